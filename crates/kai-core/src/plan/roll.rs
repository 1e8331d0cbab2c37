//! The planner proper: each host's target, each server's switch and what undoes it,
//! the waves, the standby servers, the finish (records, pruning).

use super::*;

impl AppPlan {
    pub(super) fn new(
        environment: &Environment,
        app: &App,
        version: &str,
        action: history::Kind,
        targets: &[Target],
        owner: &LockOwner,
        run_id: &str,
    ) -> AppPlan {
        AppPlan {
            env: environment.name.clone(),
            app: app.name.clone(),
            version: version.to_owned(),
            run_id: run_id.to_owned(),
            since: owner.since.clone(),
            action,
            lock: targets
                .iter()
                .map(|t| HostSteps { host: t.host.clone(), steps: lock_steps(owner, app.properties_file.as_deref()) })
                .collect(),
            stage: Vec::new(),
            roll: Vec::new(),
            waves: Vec::new(),
            on_failure: app.on_failure.unwrap_or(environment.on_failure),
            standby: Vec::new(),
            finish: Vec::new(),
            abort: Vec::new(),
            unlock: targets.iter().map(|t| HostSteps { host: t.host.clone(), steps: unlock_steps() }).collect(),
            targets: Vec::new(),
            local: None,
            promoted_from: None,
            notes: Vec::new(),
        }
    }
}

pub(super) struct Planner<'a> {
    pub(super) environment: &'a Environment,
    pub(super) app: &'a App,
    /// The version being deployed (or rolled back to).
    pub(super) version: &'a str,
    pub(super) rotation: &'a Rotation<'a>,
    pub(super) options: &'a Options,
    pub(super) keep: usize,
    /// How long fetching and unpacking the artifact may take.
    pub(super) fetch_timeout: Duration,
    pub(super) owner: &'a LockOwner,
    pub(super) action: history::Kind,
    /// Set when the release is a local build.
    pub(super) local: Option<&'a LocalBuild>,
    /// Set by `kai promote`.
    pub(super) promoted_from: Option<&'a str>,
}

impl<'a> Planner<'a> {
    pub(super) fn version(&self) -> &str {
        self.version
    }

    pub(super) fn release_dir(&self) -> String {
        format!("releases/{}", self.version())
    }

    pub(super) fn temp_dir(&self) -> String {
        format!("releases/.tmp-{}-{}", self.version(), self.options.run_id)
    }

    /// The properties file into `dir`: a release already there gets it atomically; the
    /// staging folder (`staging`), which nothing reads until it is renamed, in place.
    pub(super) fn properties(&self, host: &str, dir: &str, staging: bool) -> Option<Step> {
        let file = self.app.properties_file.as_ref()?;
        let contents = rendered_properties(self.environment, self.app, host, self.version)?;
        let shown = properties_text(self.environment, self.app, host, self.version, crate::template::Rendering::Shown)?;
        let path = format!("{dir}/{file}");
        let write = if staging { helpers::put_masked(&path, &contents, &shown) } else { helpers::write_masked(&path, &contents, &shown) };
        Some(Step::run(StepKind::Properties, write))
    }

    /// The start script of a release running with `settings`, in `current`, its output
    /// to the script log.
    pub(super) fn start(&self, settings: &RunSettings) -> Step {
        let limit = self.app.start_timeout;
        Step::run(StepKind::Start, helpers::run_logged(&settings.start, limit, None)).limit(limit + SCRIPT_GRACE)
    }

    pub(super) fn stop(&self, settings: &RunSettings) -> Step {
        let limit = self.app.stop_timeout;
        Step::run(StepKind::Stop, helpers::run_logged(&settings.stop, limit, None)).limit(limit + SCRIPT_GRACE)
    }

    /// Stops `release` with its `settings` if `current` points to it: an undo does not
    /// know whether the failure came before or after the switch.
    pub(super) fn stop_if(&self, release: &str, settings: &RunSettings) -> Step {
        let limit = self.app.stop_timeout;
        Step::run(StepKind::Stop, helpers::run_logged(&settings.stop, limit, Some(release))).limit(limit + SCRIPT_GRACE)
    }

    pub(super) fn health(&self, settings: &RunSettings) -> Option<Step> {
        settings.health_step(self.app.health.timeout, self.app.health.stable)
    }

    /// How `release` runs on `host`: as recorded there when it was installed, else as
    /// the configuration says today (unknown when its recorded fingerprint says it was
    /// installed otherwise, or there is none).
    pub(super) fn runs(&self, host: &str, release: &str, facts: &HostFacts) -> Runs {
        if let Some(recorded) = facts.run_settings.get(release) {
            return Runs { settings: recorded.clone(), source: run_settings::Source::Recorded };
        }
        let settings = RunSettings::configured(self.environment, self.app, host, release);
        let same = facts.settings.get(release).is_some_and(|line| *line == settings_line(self.environment, self.app, host, release));
        Runs { settings, source: if same { run_settings::Source::Configured } else { run_settings::Source::Unknown } }
    }

    /// How the release this plan switches to runs on `host`: a deploy installs it with
    /// today's configuration; a rollback goes back to it as it was installed.
    pub(super) fn target_runs(&self, host: &str, facts: &HostFacts) -> Runs {
        match self.action {
            history::Kind::Rollback => self.runs(host, self.version(), facts),
            _ => Runs {
                settings: RunSettings::configured(self.environment, self.app, host, self.version()),
                source: run_settings::Source::Configured,
            },
        }
    }

    /// The balancer names of the active servers in rotation when the rollout begins:
    /// the all-but-one guard counts these (docs/deploy.md).
    pub(super) fn counted(&self, targets: &[Target], facts: &BTreeMap<String, HostFacts>) -> Result<Vec<String>, PlanError> {
        targets
            .iter()
            .filter(|t| t.role == Role::Active && facts.get(&t.host).and_then(|f| f.in_rotation) != Some(false))
            .map(|t| self.rotation.member(&t.host).map_err(PlanError::from))
            .collect()
    }

    /// The standby switches and the rolling switch of the active servers, in waves,
    /// each server guarded by the others counted in rotation.
    pub(super) fn switches(
        &self,
        plan: &mut AppPlan,
        targets: Vec<Target>,
        facts: &BTreeMap<String, HostFacts>,
        stager: Option<&Stager<'_>>,
    ) -> Result<(), PlanError> {
        let hosts: Vec<String> = targets.iter().map(|t| t.host.clone()).collect();
        let none = HostFacts::default();
        let facts_of = |host: &str| facts.get(host).unwrap_or(&none);
        for target in targets.iter().filter(|t| t.change && t.role == Role::Standby) {
            plan.standby.push(HostSteps { host: target.host.clone(), steps: self.standby(target, &hosts, stager, facts_of(&target.host)) });
        }
        plan.notes = self.unknown_settings(&targets, facts);
        let rolling: Vec<&Target> = targets.iter().filter(|t| t.change && t.role == Role::Active).collect();
        let policy = self.app.rollout.unwrap_or(self.environment.rollout);
        let canary = self.canary();
        plan.waves = match canary {
            Some(canary) => rollout::with_canary(rolling.len(), policy.batch, canary.hosts),
            None => rollout::waves(rolling.len(), policy),
        };
        let counted = self.counted(&targets, facts)?;
        for wave in &plan.waves {
            let this_wave: Vec<String> = wave.iter().map(|&i| self.rotation.member(&rolling[i].host)).collect::<Result<_, _>>()?;
            let others: Vec<String> = counted.iter().filter(|s| !this_wave.contains(s)).cloned().collect();
            for &i in wave {
                let target = rolling[i];
                let guard = counted.contains(&self.rotation.member(&target.host)?).then_some(others.as_slice());
                plan.roll.push(self.roll(target, guard, &hosts, stager, facts_of(&target.host))?);
            }
        }
        if let (Some(canary), Some(first)) = (canary, plan.waves.first().filter(|_| plan.waves.len() > 1)) {
            let canary_hosts: Vec<&Target> = first.iter().map(|&i| rolling[i]).collect();
            if let Some(judge) = self.judge(canary, &canary_hosts, &targets, &counted)? {
                plan.roll[first.len() - 1].roll.push(judge);
            }
        }
        plan.targets = targets;
        Ok(())
    }

    /// The `[canary]` a deploy is judged by: the app's, else its environment's; none
    /// for a rollback (it goes back to what ran).
    pub(super) fn canary(&self) -> Option<&'a Canary> {
        if self.action != history::Kind::Deploy {
            return None;
        }
        self.app.canary.as_ref().or(self.environment.canary.as_ref())
    }

    /// The step that judges the canary wave against the other active servers that run
    /// something and are in rotation; none when there are none (a first install).
    pub(super) fn judge(
        &self,
        canary: &Canary,
        wave: &[&Target],
        targets: &[Target],
        counted: &[String],
    ) -> Result<Option<Step>, PlanError> {
        let in_wave = |host: &str| wave.iter().any(|t| t.host == host);
        let mut baseline_hosts = Vec::new();
        let mut baseline = Vec::new();
        for t in targets.iter().filter(|t| t.role == Role::Active && !in_wave(&t.host) && t.from.is_some()) {
            let member = self.rotation.member(&t.host)?;
            if counted.contains(&member) {
                baseline_hosts.push(t.host.clone());
                baseline.push(member);
            }
        }
        if baseline.is_empty() {
            return Ok(None);
        }
        let canary_members: Vec<String> = wave.iter().map(|t| self.rotation.member(&t.host)).collect::<Result<_, _>>()?;
        // The configuration checked that one of the two is there.
        let by = if canary.judge_command.is_empty() {
            JudgeBy::Haproxy { admin: self.rotation.admin(), backend: self.rotation.haproxy_target(&wave[0].host)?.backend }
        } else {
            JudgeBy::Command(Command::new(canary.judge_command.iter().map(|w| self.rotation.render(w, &wave[0].host))))
        };
        let policy = canary.policy.clone();
        let limit = policy.window * policy.max_windows + self.environment.balancer.drain_timeout + SCRIPT_GRACE;
        let judge = crate::step::Judge {
            by,
            canary: canary_members,
            baseline,
            canary_hosts: wave.iter().map(|t| t.host.clone()).collect(),
            baseline_hosts,
            policy,
        };
        Ok(Some(Step::new(StepKind::Judge, Action::Judge(Box::new(judge))).limit(limit)))
    }

    /// `guard`: the servers that must be in rotation before this one leaves it;
    /// `None` when this one is not in rotation (nothing to guard).
    pub(super) fn roll(
        &self,
        target: &Target,
        guard: Option<&[String]>,
        hosts: &[String],
        stager: Option<&Stager<'_>>,
        facts: &HostFacts,
    ) -> Result<ServerRoll, PlanError> {
        let in_place = target.in_place(self.version());
        let new = self.target_runs(&target.host, facts).settings;
        let old = target.from.as_deref().map(|from| self.runs(&target.host, from, facts).settings);
        let mut roll = vec![self.started(target, hosts)];
        roll.extend(self.rotation.take_out(&target.host, guard)?);
        if let Some(old) = &old {
            roll.push(self.stop(old));
        }
        match stager {
            Some(stager) if in_place => roll.extend(stager.reconfigure(&target.host)),
            _ if in_place => {}
            _ => roll.extend(switch_to(self.version(), StepKind::Switch)),
        }
        roll.push(self.start(&new));
        roll.extend(self.health(&new));
        if target.disabled && self.environment.balancer.kind != BalancerKind::HealthFile {
            roll.push(Step::run(StepKind::Enable, Command::new(["rm", "-f", "disabled"])));
        }
        roll.extend(self.rotation.put_back(&target.host)?);
        let restore = stager.filter(|_| in_place).map(|s| s.restore(facts)).unwrap_or_default();
        let undo = self.undo(target, guard, restore, &new, old.as_ref())?;
        Ok(ServerRoll { host: target.host.clone(), roll, undo })
    }

    /// What puts a server back as it was: the new release stopped with its settings
    /// (or the old one, if the failure came before the switch), then the release it ran,
    /// started and checked as that release runs. `restore`: for a server restarted in
    /// place, what puts its settings back.
    pub(super) fn undo(
        &self,
        target: &Target,
        guard: Option<&[String]>,
        restore: Vec<Step>,
        new: &RunSettings,
        old: Option<&RunSettings>,
    ) -> Result<Vec<Step>, PlanError> {
        let mut undo = self.rotation.take_out(&target.host, guard)?;
        undo.push(self.stop_if(self.version(), new));
        match (&target.from, old) {
            (Some(_), Some(old)) if target.in_place(self.version()) => {
                undo.extend(restore);
                undo.push(self.start(old));
                undo.extend(self.health(old));
                undo.extend(self.rotation.put_back(&target.host)?);
            }
            (Some(from), Some(old)) => {
                undo.push(self.stop_if(from, old));
                undo.extend(switch_to(from, StepKind::SwitchBack));
                undo.push(self.start(old));
                undo.extend(self.health(old));
                undo.extend(self.rotation.put_back(&target.host)?);
            }
            _ => undo.push(Step::run(StepKind::SwitchBack, Command::new(["rm", "-f", "current"]))),
        }
        Ok(undo)
    }

    pub(super) fn standby(&self, target: &Target, hosts: &[String], stager: Option<&Stager<'_>>, facts: &HostFacts) -> Vec<Step> {
        let mut steps = vec![self.started(target, hosts), Step::run(StepKind::Disable, Command::new(["touch", "disabled"]))];
        if let Some(from) = &target.from {
            steps.push(self.stop(&self.runs(&target.host, from, facts).settings));
        }
        match stager {
            Some(stager) if target.in_place(self.version()) => steps.extend(stager.reconfigure(&target.host)),
            _ if target.in_place(self.version()) => {}
            _ => steps.extend(switch_to(self.version(), StepKind::Switch)),
        }
        steps
    }

    /// What the plan should say about releases whose settings were not recorded: a
    /// release the plan may put back (or, for a rollback, goes back to) runs with
    /// today's configuration, which may not be what it was installed with.
    pub(super) fn unknown_settings(&self, targets: &[Target], facts: &BTreeMap<String, HostFacts>) -> Vec<String> {
        let none = HostFacts::default();
        let mut unknown: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for target in targets.iter().filter(|t| t.change) {
            let facts = facts.get(&target.host).unwrap_or(&none);
            let mut releases: Vec<&str> = target.from.as_deref().into_iter().collect();
            if self.action == history::Kind::Rollback {
                releases.push(self.version());
            }
            for release in releases {
                if self.runs(&target.host, release, facts).source == run_settings::Source::Unknown {
                    unknown.entry(release).or_default().push(&target.host);
                }
            }
        }
        unknown
            .into_iter()
            .map(|(release, hosts)| {
                format!(
                    "{release} on {} has no record of the start, stop and health settings it was installed with (an older kai \
                     installed it): stopping or putting it back uses today's",
                    hosts.join(", ")
                )
            })
            .collect()
    }

    /// The history line that says this deploy starts changing `target`: the first
    /// step on a server, so a deploy killed after it shows as interrupted there.
    pub(super) fn started(&self, target: &Target, hosts: &[String]) -> Step {
        let mut record = started_record(
            self.owner,
            &self.options.run_id,
            &self.environment.name,
            &self.app.name,
            self.action.clone(),
            target,
            self.version,
            hosts,
        );
        record.local = self.local.cloned();
        record.promoted_from = self.promoted_from.map(str::to_owned);
        Step::run(StepKind::Started, helpers::started(&record.to_line()))
    }

    /// Keeps the newest `keep` releases, never the new one or the one it replaced.
    pub(super) fn prune(&self, target: &Target, facts: &HostFacts) -> Vec<Step> {
        let protected = |r: &str| r == self.version() || Some(r) == target.from.as_deref();
        let mut kept = 1 + usize::from(target.from.as_deref().is_some_and(|f| f != self.version()));
        let mut doomed = Vec::new();
        for release in facts.releases.iter().filter(|r| !protected(r)) {
            if kept < self.keep {
                kept += 1;
            } else {
                doomed.push(release.as_str());
            }
        }
        if doomed.is_empty() {
            return Vec::new();
        }
        vec![Step::run(StepKind::Prune, helpers::prune(&doomed))]
    }
}

/// Points `current` at `releases/<version>` atomically: a new link beside it, then rename(2).
pub(super) fn switch_to(version: &str, kind: StepKind) -> [Step; 2] {
    [
        Step::run(kind, Command::new(["ln", "-sfn", &format!("releases/{version}"), ".current.tmp"])),
        Step::run(kind, Command::new(["mv", "-T", ".current.tmp", "current"])),
    ]
}
