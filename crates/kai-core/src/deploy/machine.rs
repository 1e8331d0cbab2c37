//! The machine: [`Deploy`], state by state (the diagram is in [`super`]).

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum State {
    LockFirst,
    LockRest,
    Inspect,
    Stage,
    Roll {
        undo: bool,
        servers: Vec<usize>,
    },
    Standby,
    Finish,
    /// Cleaning up and unlocking before the end.
    Release,
    Done,
}

/// One app's deploy.
pub struct Deploy<'a> {
    ctx: Context<'a>,
    placements: Vec<Placement>,
    state: State,
    request: Request,
    facts: BTreeMap<String, HostFacts>,
    /// Hosts where this deploy holds the lock.
    locked: BTreeSet<String>,
    plan: Option<AppPlan>,
    rollout: Option<Rollout>,
    /// Hosts whose servers were touched (a "started" record written).
    touched: BTreeSet<String>,
    standby_failed: BTreeSet<String>,
    stop: bool,
    now: SystemTime,
    report: Report,
}

impl<'a> Deploy<'a> {
    pub fn new(ctx: Context<'a>) -> Deploy<'a> {
        let to = match &ctx.what {
            What::Deploy(release) => release.version.clone(),
            What::Rollback(to) => to.clone().unwrap_or_else(|| "?".into()),
            What::Saved { plan, .. } => plan.version.clone(),
        };
        let (local, promoted_from) = match &ctx.what {
            What::Deploy(release) => (release.local.clone(), release.promoted_from.clone()),
            What::Saved { plan, .. } => (plan.local.clone(), plan.promoted_from.clone()),
            What::Rollback(_) => (None, None),
        };
        let report = Report { local, promoted_from, ..Report::new(&ctx.app.name, &to) };
        let now = ctx.started;
        let mut deploy = Deploy {
            placements: Vec::new(),
            state: State::Done,
            request: Request::Done,
            facts: BTreeMap::new(),
            locked: BTreeSet::new(),
            plan: None,
            rollout: None,
            touched: BTreeSet::new(),
            standby_failed: BTreeSet::new(),
            stop: false,
            now,
            report,
            ctx,
        };
        match plan::placements(deploy.ctx.config, deploy.ctx.env, deploy.ctx.app, &deploy.ctx.options.only) {
            Ok(placements) => {
                deploy.report.hosts = placements.iter().map(|p| p.host.clone()).collect();
                deploy.placements = placements;
                let first = deploy.placements[..1].to_vec();
                deploy.go(State::LockFirst, Request::Run(deploy.lock_tasks(&first)));
            }
            Err(e) => deploy.report.message = Some(e.to_string()),
        }
        deploy
    }

    /// What to do now.
    pub fn poll(&self) -> &Request {
        &self.request
    }

    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The plan, once made.
    pub fn plan(&self) -> Option<&AppPlan> {
        self.plan.as_ref()
    }

    /// The facts read from the hosts (after the lock, with health and rotation).
    pub fn facts(&self) -> &BTreeMap<String, HostFacts> {
        &self.facts
    }

    /// Where the deploy stands, for progress: `lock`, `stage`, `roll`, `roll back`, …
    pub fn phase(&self) -> &'static str {
        match &self.state {
            State::LockFirst | State::LockRest => "lock",
            State::Inspect => "inspect",
            State::Stage => "stage",
            State::Roll { undo: false, .. } => "roll",
            State::Roll { undo: true, .. } => "roll back",
            State::Standby => "standby",
            State::Finish => "record",
            State::Release => "unlock",
            State::Done => "done",
        }
    }

    pub fn handle(&mut self, event: Event, now: SystemTime) {
        self.now = now;
        self.report.duration = now.duration_since(self.ctx.started).unwrap_or(Duration::ZERO);
        match event {
            Event::Stop => self.stopped(),
            Event::Ran(results) => self.ran(results),
            Event::Inspected(found) => self.inspected(found),
        }
    }

    /// A stop was asked for; what [`poll`](Self::poll) returned has not been started
    /// (the binary tells the machine between rounds): work that would take a server
    /// out, or lock or stage more, is dropped; an undo under way goes on.
    fn stopped(&mut self) {
        if self.stop {
            return;
        }
        self.stop = true;
        match self.state {
            State::LockFirst => {
                self.report.result = AppResult::Interrupted;
                self.report.message = Some("interrupted before anything was locked; nothing changed".into());
                self.go(State::Done, Request::Done);
            }
            State::LockRest | State::Inspect => self.give_up(Trouble::Stopped),
            State::Stage => {
                self.report.result = AppResult::Interrupted;
                self.report.message = Some("interrupted before any server was switched; nothing changed".into());
                self.release(Vec::new());
            }
            State::Roll { undo: false, .. } => self.finish_rollout(rollout::Ending::Halted),
            State::Standby => {
                self.report.result = AppResult::Interrupted;
                self.finish();
            }
            State::Roll { undo: true, .. } | State::Finish | State::Release | State::Done => {}
        }
    }

    fn go(&mut self, state: State, request: Request) {
        self.state = state;
        self.request = request;
    }

    fn lock_tasks(&self, placements: &[Placement]) -> Vec<Task> {
        let steps = plan::lock_steps(&self.ctx.owner, self.ctx.app.properties_file.as_deref());
        placements.iter().map(|p| Task { host: p.host.clone(), steps: steps.clone() }).collect()
    }

    fn ran(&mut self, results: Vec<TaskResult>) {
        // An answer to a request not made changes nothing.
        if !matches!(self.request, Request::Run(_)) {
            return;
        }
        let Request::Run(tasks) = std::mem::replace(&mut self.request, Request::Done) else { return };
        let results: Vec<(Task, TaskResult)> = tasks.into_iter().zip(results.into_iter().chain(std::iter::repeat_with(missing))).collect();
        match self.state.clone() {
            State::LockFirst => self.locked_first(results),
            State::LockRest => self.locked_rest(results),
            State::Stage => self.staged(results),
            State::Roll { undo, servers } => self.rolled(undo, &servers, results),
            State::Standby => self.standby_done(results),
            State::Finish => self.finished(results),
            State::Release => self.released(results),
            State::Done | State::Inspect => self.go(State::Done, Request::Done),
        }
    }

    // ---- lock -----------------------------------------------------------------------

    /// Takes in what each lock task said; `Err` carries the trouble found.
    fn take_locks(&mut self, results: Vec<(Task, TaskResult)>) -> Result<(), Trouble> {
        let mut trouble = None;
        for (task, result) in results {
            let lock = result.outputs.first();
            // Taken unless the lock step itself failed (it takes the lock whole or not at all).
            let taken = result.failure.as_ref().is_none_or(|f| f.step != StepKind::Lock);
            if taken {
                self.locked.insert(task.host.clone());
            }
            match result.failure {
                None => {
                    let probe = result.outputs.get(1).map_or("", |o| o.stdout.as_str());
                    self.facts.insert(task.host.clone(), parse_probe(probe));
                }
                Some(failure) if failure.step == StepKind::Lock && lock.and_then(|o| o.code) == Some(helpers::LOCK_HELD) => {
                    let owner = parse_lock_owner(lock.map_or("", |o| o.stdout.trim()));
                    trouble.get_or_insert(Trouble::Held(Box::new(owner), Box::new(failure)));
                }
                Some(failure) => {
                    if !matches!(trouble, Some(Trouble::Failed(_))) {
                        trouble = Some(Trouble::Failed(Box::new(failure)));
                    }
                }
            }
        }
        match trouble {
            None if self.stop => Err(Trouble::Stopped),
            None => Ok(()),
            Some(t) => Err(t),
        }
    }

    fn locked_first(&mut self, results: Vec<(Task, TaskResult)>) {
        if let Err(trouble) = self.take_locks(results) {
            return self.give_up(trouble);
        }
        let rest = self.placements[1..].to_vec();
        if rest.is_empty() {
            return self.inspect();
        }
        self.go(State::LockRest, Request::Run(self.lock_tasks(&rest)));
    }

    fn locked_rest(&mut self, results: Vec<(Task, TaskResult)>) {
        match self.take_locks(results) {
            Ok(()) => self.inspect(),
            Err(trouble) => self.give_up(trouble),
        }
    }

    /// Ends before anything changed: the result, then the locks taken go.
    fn give_up(&mut self, trouble: Trouble) {
        match trouble {
            Trouble::Held(owner, failure) => {
                self.report.result = AppResult::Locked(*owner);
                self.report.failure = Some(*failure);
            }
            Trouble::Failed(failure) => {
                self.report.result = AppResult::Failed;
                self.report.message = Some("nothing was switched".into());
                self.report.failure = Some(*failure);
            }
            Trouble::Message(message) => {
                self.report.result = AppResult::Failed;
                self.report.message = Some(message);
            }
            Trouble::Stopped => {
                self.report.result = AppResult::Interrupted;
                self.report.message = Some("interrupted before any server was switched; nothing changed".into());
            }
            Trouble::Refused(changes) => {
                self.report.result = AppResult::Refused;
                self.report.message =
                    Some(format!("the hosts changed since the plan was made; nothing was changed:\n  {}", changes.join("\n  ")));
            }
            Trouble::Differs(difference) => {
                self.report.result = AppResult::Refused;
                self.report.message = Some(format!(
                    "the saved plan is not the plan kai makes of it now (was the file changed?); nothing was changed:\n  {difference}"
                ));
            }
        }
        self.release(Vec::new());
    }

    /// Runs `first` (clean-up steps per host) and unlocks every host locked, then ends.
    fn release(&mut self, first: Vec<HostSteps>) {
        let mut tasks: Vec<Task> = Vec::new();
        for host in &self.locked {
            let mut steps: Vec<Step> = first.iter().filter(|h| &h.host == host).flat_map(|h| h.steps.clone()).collect();
            steps.extend(plan::unlock_steps());
            tasks.push(Task { host: host.clone(), steps });
        }
        self.locked.clear();
        if tasks.is_empty() {
            self.go(State::Done, Request::Done);
        } else {
            self.go(State::Release, Request::Run(tasks));
        }
    }

    /// What the clean-up and unlock of a deploy that gave up did: each failure is a
    /// note; a host whose unlock did not run (a step before it failed) is unlocked again,
    /// once (an unlock that fails itself is not tried again: the note says so).
    fn released(&mut self, results: Vec<(Task, TaskResult)>) {
        for (task, result) in results {
            if let Some(failure) = result.failure {
                self.report.notes.push(format!("{}: {} failed: {}", task.host, failure.step, failure.reason));
                if failure.step != StepKind::Unlock && task.steps.iter().any(|s| s.kind == StepKind::Unlock) {
                    self.locked.insert(task.host);
                }
            }
        }
        self.release(Vec::new());
    }

    // ---- inspect and plan -----------------------------------------------------------

    fn inspect(&mut self) {
        let (config, env, app, only) = (self.ctx.config, self.ctx.env, self.ctx.app, &self.ctx.options.only);
        let version = match &self.ctx.what {
            What::Deploy(release) => Ok(release.version.clone()),
            What::Rollback(to) => plan::rollback_version(config, env, app, to.as_deref(), &self.facts, only),
            What::Saved { plan, .. } => Ok(plan.version.clone()),
        };
        match version {
            Ok(version) => {
                self.report.to.clone_from(&version);
                let health = plan::health_checked(&self.placements, &self.facts, &version);
                self.go(State::Inspect, Request::Inspect { version, health });
            }
            Err(e) => self.give_up(Trouble::Message(e.to_string())),
        }
    }

    fn inspected(&mut self, found: Result<BTreeMap<String, Inspection>, String>) {
        if self.state != State::Inspect {
            return;
        }
        let found = match found {
            Ok(found) => found,
            Err(reason) => {
                let failure = StepFailure {
                    host: "balancer".into(),
                    step: StepKind::Probe,
                    command: String::new(),
                    reason: Reason::Kai(reason),
                    output: crate::untrusted::HostText::default(),
                };
                return self.give_up(Trouble::Failed(Box::new(failure)));
            }
        };
        for (host, inspection) in found {
            if let Some(f) = self.facts.get_mut(&host) {
                f.healthy = inspection.healthy;
                f.in_rotation = inspection.in_rotation;
            }
        }
        if self.stop {
            return self.give_up(Trouble::Stopped);
        }
        let (config, env, app, options, owner) = (self.ctx.config, self.ctx.env, self.ctx.app, &self.ctx.options, &self.ctx.owner);
        let planned = match &self.ctx.what {
            What::Deploy(release) => plan::plan_app(config, env, app, release, &self.facts, owner, options).map_err(|e| e.to_string()),
            What::Rollback(_) => {
                plan::plan_rollback(config, env, app, Some(&self.report.to), &self.facts, owner, options).map_err(|e| e.to_string())
            }
            What::Saved { plan: saved, facts, release, owner } => {
                let changes = fingerprint::changes(facts, &fingerprint::summaries(&self.facts));
                if !changes.is_empty() {
                    return self.give_up(Trouble::Refused(changes));
                }
                let options = Options { run_id: saved.run_id.clone(), ..options.clone() };
                let derived = match release {
                    Some(release) => plan::plan_app(config, env, app, release, &self.facts, owner, &options),
                    None => plan::plan_rollback(config, env, app, Some(&saved.version), &self.facts, owner, &options),
                };
                match derived {
                    Ok(derived) => match crate::plan::saved::first_difference(saved, &derived) {
                        None => Ok(derived),
                        Some(difference) => return self.give_up(Trouble::Differs(difference)),
                    },
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(message) => {
                // A fact of the hosts stopped it (disk space, a release that differs):
                // each host's history says so.
                let records: Vec<HostSteps> = self
                    .locked
                    .iter()
                    .map(|host| {
                        let record = self.record(host, history::Outcome::NotSwitched, Some(message.clone()));
                        HostSteps { host: host.clone(), steps: vec![plan::history_step(StepKind::Record, &record)] }
                    })
                    .collect();
                self.report.result = AppResult::Failed;
                self.report.message = Some(message);
                return self.release(records);
            }
        };
        self.report.from = from_versions(&plan);
        self.report.notes.extend(bringing_back(&plan, &self.facts));
        self.report.notes.extend(plan.notes.iter().cloned());
        if plan.is_noop() {
            self.report.result = AppResult::UpToDate;
            self.plan = Some(plan);
            return self.release(Vec::new());
        }
        let stage: Vec<Task> = plan.stage.iter().map(|h| Task { host: h.host.clone(), steps: h.steps.clone() }).collect();
        self.rollout = Some(Rollout::new(plan.waves.clone(), plan.on_failure));
        self.plan = Some(plan);
        if stage.is_empty() {
            return self.roll_next();
        }
        self.go(State::Stage, Request::Run(stage));
    }

    // ---- stage ----------------------------------------------------------------------

    fn staged(&mut self, results: Vec<(Task, TaskResult)>) {
        let mut abort = self.plan.as_ref().map(|p| p.abort.clone()).unwrap_or_default();
        let staged: Vec<String> = results.iter().map(|(task, _)| task.host.clone()).collect();
        if let Some(failure) = results.into_iter().find_map(|(_, r)| r.failure) {
            self.report.result = AppResult::Failed;
            self.report.message = Some("nothing was switched".into());
            // Each host that was staged says so in its history: the failure, and that
            // nothing was switched.
            let detail = Some(failure_detail(&failure));
            for host in staged {
                let outcome = if host == failure.host { history::Outcome::Failed } else { history::Outcome::NotSwitched };
                self.report.outcomes.insert(host.clone(), outcome.clone());
                let record = plan::history_step(StepKind::Record, &self.record(&host, outcome, detail.clone()));
                match abort.iter_mut().find(|h| h.host == host) {
                    Some(steps) => steps.steps.insert(0, record),
                    None => abort.push(HostSteps { host, steps: vec![record] }),
                }
            }
            self.report.failure = Some(failure);
            return self.release(abort);
        }
        if self.stop {
            self.report.result = AppResult::Interrupted;
            self.report.message = Some("interrupted before any server was switched; nothing changed".into());
            return self.release(abort);
        }
        self.roll_next();
    }

    // ---- roll -----------------------------------------------------------------------

    fn roll_next(&mut self) {
        let (Some(plan), Some(rollout)) = (&self.plan, &self.rollout) else { return self.go(State::Done, Request::Done) };
        match rollout.poll() {
            Next::Roll(_) if self.stop => self.finish_rollout(rollout::Ending::Halted),
            Next::Roll(servers) => {
                let tasks = servers.iter().map(|&i| Task { host: plan.roll[i].host.clone(), steps: plan.roll[i].roll.clone() }).collect();
                self.go(State::Roll { undo: false, servers }, Request::Run(tasks));
            }
            Next::Undo(servers) => {
                let tasks = servers.iter().map(|&i| Task { host: plan.roll[i].host.clone(), steps: plan.roll[i].undo.clone() }).collect();
                self.go(State::Roll { undo: true, servers }, Request::Run(tasks));
            }
            Next::Done(outcome) => self.finish_rollout(outcome),
        }
    }

    fn rolled(&mut self, undo: bool, servers: &[usize], results: Vec<(Task, TaskResult)>) {
        let mut outcomes = Vec::new();
        for (&server, (task, mut result)) in servers.iter().zip(results) {
            if !undo && !result.outputs.is_empty() {
                self.touched.insert(task.host.clone());
            }
            outcomes.push((server, result.ok()));
            if let Some(verdict) = take_verdict(&task, &mut result) {
                self.report.canary = Some(verdict);
            }
            if let Some(failure) = result.failure {
                if let Some(why) =
                    Some(&failure).filter(|f| f.step == StepKind::Start).and_then(|f| crate::facts::port_taken(f.output.raw()))
                {
                    let note = format!("{}: {why}", task.host);
                    if !self.report.notes.contains(&note) {
                        self.report.notes.push(note);
                    }
                }
                if self.report.failure.is_none() {
                    self.report.failure = Some(failure);
                }
            }
        }
        if let Some(rollout) = &mut self.rollout {
            rollout.handle(&outcomes);
        }
        self.roll_next();
    }

    fn finish_rollout(&mut self, outcome: rollout::Ending) {
        self.report.result = match outcome {
            rollout::Ending::Succeeded if matches!(self.ctx.what, What::Rollback(_)) => AppResult::Reverted,
            rollout::Ending::Succeeded => AppResult::Deployed,
            rollout::Ending::RolledBack => AppResult::RolledBack,
            rollout::Ending::Halted if self.stop => AppResult::Interrupted,
            rollout::Ending::Halted => AppResult::Halted,
            rollout::Ending::RollbackFailed => AppResult::RollbackFailed,
        };
        let standby: Vec<Task> = match (&self.plan, &self.report.result) {
            (Some(plan), result) if result.switched() && !self.stop => {
                plan.standby.iter().map(|h| Task { host: h.host.clone(), steps: h.steps.clone() }).collect()
            }
            _ => Vec::new(),
        };
        if self.stop && self.report.result.switched() && self.plan.as_ref().is_some_and(|p| !p.standby.is_empty()) {
            self.report.result = AppResult::Interrupted;
        }
        if standby.is_empty() {
            return self.finish();
        }
        self.go(State::Standby, Request::Run(standby));
    }

    fn standby_done(&mut self, results: Vec<(Task, TaskResult)>) {
        for (task, result) in results {
            if !result.outputs.is_empty() {
                self.touched.insert(task.host.clone());
            }
            if let Some(failure) = result.failure {
                self.standby_failed.insert(task.host.clone());
                self.report.result = AppResult::Failed;
                self.report.message = Some("every active server runs the new release, but a standby server could not be switched".into());
                self.report.failure.get_or_insert(failure);
            }
        }
        self.finish();
    }

    // ---- finish ---------------------------------------------------------------------

    /// What `host` ended as, when it was touched.
    fn outcome_of(&self, host: &str) -> history::Outcome {
        let plan = self.plan.as_ref();
        let roll_index = plan.and_then(|p| p.roll.iter().position(|s| s.host == host));
        let state = roll_index.and_then(|i| self.rollout.as_ref().map(|r| r.servers()[i]));
        match state {
            Some(ServerState::Switched) if self.report.result == AppResult::Interrupted => history::Outcome::Interrupted,
            Some(ServerState::Switched) => history::Outcome::Ok,
            Some(ServerState::RolledBack) => history::Outcome::RolledBack,
            Some(ServerState::Failed | ServerState::Stuck) => history::Outcome::Failed,
            Some(ServerState::Pending) => history::Outcome::NotSwitched,
            None if self.standby_failed.contains(host) => history::Outcome::Failed,
            None => history::Outcome::Ok,
        }
    }

    fn record(&self, host: &str, result: history::Outcome, detail: Option<String>) -> Record {
        let plan = self.plan.as_ref();
        let target = plan.and_then(|p| p.target(host));
        // The plan's run and time: its "started" records carry them too.
        let (run, time) = plan.map_or((&self.ctx.options.run_id, &self.ctx.owner.since), |p| (&p.run_id, &p.since));
        Record {
            time: time.clone(),
            user: self.ctx.owner.user.clone(),
            machine: self.ctx.owner.machine.clone(),
            env: self.ctx.env.to_owned(),
            app: self.ctx.app.name.clone(),
            action: plan.map_or(history::Kind::Deploy, |p| p.action.clone()),
            from: target.and_then(|t| t.from.clone()),
            to: self.report.to.clone(),
            result,
            duration_ms: u64::try_from(self.now.duration_since(self.ctx.started).unwrap_or(Duration::ZERO).as_millis()).unwrap_or(u64::MAX),
            host: host.to_owned(),
            hosts: self.report.hosts.clone(),
            detail,
            run: Some(run.clone()),
            canary: self.report.canary.clone(),
            local: plan.and_then(|p| p.local.clone()),
            promoted_from: plan.and_then(|p| p.promoted_from.clone()),
        }
    }

    /// Records a result on every touched host, prunes after a deploy, unlocks (unless
    /// a server is stuck): one task a host.
    fn finish(&mut self) {
        let keep_lock = self.report.result == AppResult::RollbackFailed;
        let mut kept = None;
        if keep_lock {
            let stuck: Vec<&str> = match (&self.plan, &self.rollout) {
                (Some(plan), Some(rollout)) => rollout
                    .servers()
                    .iter()
                    .zip(&plan.roll)
                    .filter(|(state, _)| **state == ServerState::Stuck)
                    .map(|(_, server)| server.host.as_str())
                    .collect(),
                _ => Vec::new(),
            };
            let stuck = if stuck.is_empty() { "a server".to_owned() } else { stuck.join(", ") };
            let (app, env) = (&self.ctx.app.name, self.ctx.env);
            self.report.lock_kept = true;
            self.report.message = Some(format!(
                "{stuck} could not be put back and is in an unknown state; the deploy lock is kept on every host of {app}. \
                 Look at {stuck}, then run `kai unlock {env} {app}` and deploy again"
            ));
            let why = self.report.failure.as_ref().map(|f| format!(" ({}: {})", f.step, f.reason)).unwrap_or_default();
            kept = Some(format!("kept after a failed put-back: {stuck} could not be put back{why}"));
        }
        if self.report.result == AppResult::Interrupted && self.report.message.is_none() {
            let (switched, not): (Vec<&String>, Vec<&String>) = self
                .report
                .hosts
                .iter()
                .filter(|h| self.plan.as_ref().and_then(|p| p.target(h)).is_some_and(|t| t.change))
                .partition(|h| self.touched.contains(*h));
            let list = |hosts: &[&String]| hosts.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ");
            self.report.message = Some(match (switched.is_empty(), not.is_empty()) {
                (_, true) => "interrupted after the last server was switched".to_owned(),
                (true, false) => "interrupted before any server was switched; nothing changed".to_owned(),
                (false, false) => format!("interrupted: {} switched to {}; {} not switched", list(&switched), self.report.to, list(&not)),
            });
        }
        let detail = match (&self.report.failure, &self.report.result) {
            (Some(failure), _) => Some(failure_detail(failure)),
            (None, AppResult::Interrupted) => self.report.message.clone(),
            _ => None,
        };
        let deployed = self.report.result.switched();
        // A deploy put back leaves no trace of its release where it does not run: a later
        // rollback must not mistake it for a release that ran.
        let put_back = matches!(self.report.result, AppResult::RolledBack | AppResult::Halted);
        let mut tasks = Vec::new();
        for host in self.locked.clone() {
            let mut steps = Vec::new();
            if self.touched.contains(&host) {
                let outcome = self.outcome_of(&host);
                self.report.outcomes.insert(host.clone(), outcome.clone());
                steps.push(plan::history_step(StepKind::Record, &self.record(&host, outcome, detail.clone())));
            }
            if let Some(plan) = self.plan.as_ref().filter(|p| put_back && p.stage.iter().any(|h| h.host == host)) {
                steps.push(Step::run(StepKind::CleanUp, helpers::unstage(&plan.version)));
            }
            if deployed {
                if let Some(prune) = self.plan.as_ref().and_then(|p| p.finish.iter().find(|h| h.host == host)) {
                    steps.extend(prune.steps.iter().cloned());
                }
            }
            match &kept {
                None => steps.extend(plan::unlock_steps()),
                Some(why) => steps.push(Step::run(StepKind::Record, helpers::write_file(helpers::LOCK_KEPT, &format!("{why}\n")))),
            }
            if !steps.is_empty() {
                tasks.push(Task { host, steps });
            }
        }
        if keep_lock {
            self.locked.clear();
        }
        if tasks.is_empty() {
            return self.go(State::Done, Request::Done);
        }
        self.go(State::Finish, Request::Run(tasks));
    }

    fn finished(&mut self, results: Vec<(Task, TaskResult)>) {
        let mut unlock_after = Vec::new();
        for (task, result) in results {
            // A release kept because a process runs from it says so (`kai_prune`).
            for (step, output) in task.steps.iter().zip(&result.outputs) {
                if matches!(step.kind, StepKind::Prune | StepKind::CleanUp) {
                    let kept = output.stdout.lines().filter(|l| l.starts_with("kept "));
                    self.report.notes.extend(kept.map(|l| format!("{}: {}", task.host, crate::table::printable(l))));
                }
            }
            if let Some(failure) = result.failure {
                self.report.notes.push(format!("{}: {} failed: {}", failure.host, failure.step, failure.reason));
                if failure.step != StepKind::Unlock && self.locked.contains(&task.host) {
                    unlock_after.push(task.host.clone());
                    continue;
                }
            }
            self.locked.remove(&task.host);
        }
        self.locked.retain(|h| unlock_after.contains(h));
        self.release(Vec::new());
    }
}

/// Why a deploy gave up before changing anything.
pub(super) enum Trouble {
    Held(Box<LockOwner>, Box<StepFailure>),
    Failed(Box<StepFailure>),
    Message(String),
    Stopped,
    Refused(Vec<String>),
    /// A saved plan is not the plan kai makes of it now: the first difference.
    Differs(String),
}

/// The canary's verdict from a task that judged it: the judge step's output (JSON),
/// which a failure then shows as the figures, in words.
pub(super) fn take_verdict(task: &Task, result: &mut TaskResult) -> Option<crate::canary::Verdict> {
    let at = task.steps.iter().position(|s| s.kind == StepKind::Judge)?;
    if let Some(failure) = result.failure.as_mut().filter(|f| f.step == StepKind::Judge) {
        let verdict: crate::canary::Verdict = serde_json::from_str(failure.output.raw()).ok()?;
        failure.output = verdict.figures_text().into();
        return Some(verdict);
    }
    result.outputs.get(at).and_then(|o| serde_json::from_str(&o.stdout).ok())
}

/// A task the binary did not report on (it should not happen): a failure.
pub(super) fn missing() -> TaskResult {
    TaskResult {
        outputs: Vec::new(),
        failure: Some(StepFailure {
            host: String::new(),
            step: StepKind::Probe,
            command: String::new(),
            reason: Reason::Kai("no result was reported for this task".into()),
            output: crate::untrusted::HostText::default(),
        }),
    }
}

/// Active servers found out of rotation or disabled: named, since the deploy switches
/// them again to bring them back.
pub(super) fn bringing_back(plan: &AppPlan, facts: &BTreeMap<String, HostFacts>) -> Vec<String> {
    plan.targets
        .iter()
        .filter(|t| t.role == Role::Active && t.change)
        .filter_map(|t| {
            let f = facts.get(&t.host)?;
            let why = if f.in_rotation == Some(false) {
                "was out of the balancer's rotation"
            } else if f.disabled {
                "had a `disabled` marker"
            } else {
                return None;
            };
            Some(format!("{} {why} (an interrupted deploy?); it is switched again and put back", t.host))
        })
        .collect()
}
