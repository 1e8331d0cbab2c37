//! The deploy machine ([`Deploy`]) driven event by event, the way quinn-proto's tests
//! drive a `Connection`: a scripted world answers each request (what each host's probe
//! prints, which step fails where and why, who holds a lock, what the health checks and
//! the balancer say, when a stop comes), and the tests read the requests, their hosts
//! and step kinds, the phase and the final report: never the shell text.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kai_core::canary::{Figures, Verdict};
use kai_core::checksum::{Algorithm, Checksum};
use kai_core::config::{load, Config, ConfigSources, SourceFile};
use kai_core::deploy::{AppResult, Context, Deploy, Event, Inspection, Report, Request, Task, TaskResult, What};
use kai_core::facts::LockOwner;
use kai_core::fingerprint;
use kai_core::history::Outcome;
use kai_core::outcome::{Output, Reason, StepFailure};
use kai_core::plan::{settings_line, Options, Release, Source};
use kai_core::step::StepKind::{self, *};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ENV: &str = "transport = \"local\"\n[hosts]\nweb1 = { address = \"10.0.0.1\", root = \"/h/web1\" }\n\
                   web2 = { address = \"10.0.0.2\", root = \"/h/web2\" }\nweb3 = { address = \"10.0.0.3\", root = \"/h/web3\" }\n";
/// Two active servers and a standby.
const PAIR: &str = "servers = [\"web1\", \"web2\"]\nstandby = [\"web3\"]";
/// Three active servers.
const TRIO: &str = "servers = [\"web1\", \"web2\", \"web3\"]";

const LOCK: &[StepKind] = &[Lock, Probe];
const STAGE: &[StepKind] = &[Prepare, Fetch, Unpack, Unpack, Unpack, Unpack, Install, Install, Install];
const ROLL: &[StepKind] = &[Started, Stop, Switch, Switch, Start, Health];
const UNDO: &[StepKind] = &[Stop, Stop, SwitchBack, SwitchBack, Start, Health];
const STANDBY: &[StepKind] = &[Started, Disable, Stop, Switch, Switch];
const FINISH: &[StepKind] = &[Record, Unlock];
const PUT_BACK: &[StepKind] = &[Record, CleanUp, Unlock];
const UNLOCK: &[StepKind] = &[Unlock];

/// The app `hello` (tar.gz, a health command) in `test`: `top` are more top-level keys,
/// `placement` its servers there, `tail` more tables; `keep_releases = 2`.
fn config(top: &str, placement: &str, tail: &str) -> Config {
    let app = format!(
        "packaging = \"tar.gz\"\nuser = \"hello\"\nstart = \"bin/start.sh\"\nstop = \"bin/stop.sh\"\n{top}\n\
         [health]\ncommand = \"bin/status.sh\"\ntimeout = \"1s\"\nstable = \"0s\"\n[env.test]\n{placement}\n{tail}\n"
    );
    let file = |path: &str, text: &str| SourceFile { path: PathBuf::from(path), text: text.to_owned() };
    let sources = ConfigSources {
        root: PathBuf::from("/cfg"),
        kai_toml: file("kai.toml", "[repository]\nurl = \"/repo\"\ngroup = \"org.example\"\n[defaults]\nkeep_releases = 2\n"),
        environments: vec![file("environments/test.toml", ENV)],
        apps: vec![file("apps/hello.toml", &app)],
    };
    load(&sources).unwrap_or_else(|errors| panic!("the test configuration is invalid:\n{errors}"))
}

fn pair() -> Config {
    config("", PAIR, "")
}

fn owner(user: &str) -> LockOwner {
    LockOwner {
        user: user.into(),
        machine: "ws1".into(),
        pid: 7,
        since: "2026-01-01T00:00:00Z".into(),
        command: "kai deploy".into(),
        hold: None,
    }
}

fn release() -> Release {
    Release {
        version: "1.1.0".into(),
        file_name: "hello-1.1.0.tar.gz".into(),
        checksum: Checksum { algorithm: Algorithm::Sha256, hex: HEX.into() },
        size: Some(1000),
        source: Source::Push { local: "/cache/hello.tar.gz".into() },
        local: None,
        promoted_from: None,
    }
}

fn ctx(config: &Config, what: What) -> Context<'_> {
    let options = Options { run_id: "r1".into(), ..Options::default() };
    Context { config, env: "test", app: &config.apps["hello"], what, options, owner: owner("ann"), started: SystemTime::UNIX_EPOCH }
}

fn deploy(config: &Config) -> Deploy<'_> {
    Deploy::new(ctx(config, What::Deploy(Box::new(release()))))
}

/// What `kai_probe` prints on `host`: `current`, the `releases` (newest first), each
/// recorded with the release's checksum and the settings the configuration gives now.
fn probe(config: &Config, host: &str, current: &str, releases: &[&str]) -> String {
    let (env, app) = (&config.environments["test"], &config.apps["hello"]);
    let mut text = format!("current\treleases/{current}\n");
    for (age, r) in releases.iter().enumerate() {
        text += &format!("release\t{r}\t{}.5\n", 1_700_000_000 - age);
        text += &format!("checksum\t{r}\tsha256:{HEX}\t{}\n", settings_line(env, app, host, r));
    }
    text + "free_kb\t99999999\n"
}

/// A phase and which of its rounds (from 0).
type At = (&'static str, usize);

struct Fail {
    host: &'static str,
    phase: &'static str,
    kind: StepKind,
    reason: Reason,
    said: String,
}

/// The hosts, the balancer and the person at the keyboard, scripted.
#[derive(Default)]
struct World {
    /// What a step that succeeds prints, by host and kind (the probe, a judge, a prune).
    says: BTreeMap<(String, StepKind), String>,
    /// Hosts whose lock someone else holds: the owner line `kai_lock` prints.
    held: BTreeMap<String, String>,
    fails: Vec<Fail>,
    /// Health and rotation; a host not named is healthy, its rotation unknown.
    inspection: BTreeMap<String, Inspection>,
    inspect_error: Option<String>,
    stop: Option<At>,
    /// A round answered with only this many results.
    short: Option<(At, usize)>,
    /// Each round as asked, with the phase it was asked in; `stop` where a stop came.
    log: Vec<(&'static str, Request)>,
}

impl World {
    /// Every host of the app on `current` holding `releases`; a standby has its `disabled` marker.
    fn at(config: &Config, current: &str, releases: &[&str]) -> World {
        let mut world = World::default();
        let placement = &config.apps["hello"].envs["test"];
        for host in placement.servers.iter().chain(&placement.standby) {
            let marker = if placement.standby.contains(host) { "disabled\n" } else { "" };
            world.says.insert((host.clone(), Probe), format!("{marker}{}", probe(config, host, current, releases)));
        }
        world
    }

    /// Every host on 1.0.0.
    fn fleet(config: &Config) -> World {
        World::at(config, "1.0.0", &["1.0.0"])
    }

    fn fail(self, host: &'static str, phase: &'static str, kind: StepKind, reason: Reason) -> World {
        self.fail_saying(host, phase, kind, reason, "")
    }

    fn fail_saying(mut self, host: &'static str, phase: &'static str, kind: StepKind, reason: Reason, said: &str) -> World {
        self.fails.push(Fail { host, phase, kind, reason, said: said.into() });
        self
    }

    fn say(mut self, host: &str, kind: StepKind, text: &str) -> World {
        self.says.insert((host.into(), kind), text.into());
        self
    }

    fn held_by(mut self, host: &str, holder: &LockOwner) -> World {
        self.held.insert(host.into(), format!("{}\n", serde_json::to_string(holder).expect("an owner serializes")));
        self
    }

    fn inspect(mut self, host: &str, healthy: Option<bool>, in_rotation: Option<bool>) -> World {
        self.inspection.insert(host.into(), Inspection { healthy, in_rotation });
        self
    }

    fn stop_at(mut self, phase: &'static str, round: usize) -> World {
        self.stop = Some((phase, round));
        self
    }

    fn drive(&mut self, deploy: &mut Deploy<'_>) -> Report {
        self.drive_until(deploy, None);
        deploy.report().clone()
    }

    /// Answers every request until the deploy is done (or reaches the phase `until`).
    fn drive_until(&mut self, deploy: &mut Deploy<'_>, until: Option<&str>) {
        for round in 1..100 {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(round);
            let (phase, request) = (deploy.phase(), deploy.poll().clone());
            if until == Some(phase) {
                return;
            }
            let seen = self.log.iter().filter(|(p, _)| *p == phase).count();
            if self.stop == Some((phase, seen)) {
                self.stop = None;
                self.log.push(("stop", Request::Done));
                deploy.handle(Event::Stop, now);
                continue;
            }
            self.log.push((phase, request.clone()));
            match request {
                Request::Done => return,
                Request::Inspect { health, .. } => {
                    let hosts: Vec<String> = deploy.facts().keys().cloned().collect();
                    deploy.handle(Event::Inspected(self.answer(&hosts, &health)), now);
                }
                Request::Run(tasks) => {
                    let mut results: Vec<TaskResult> = tasks.iter().map(|t| self.run(phase, t)).collect();
                    if let Some((_, keep)) = self.short.filter(|(at, _)| *at == (phase, seen)) {
                        results.truncate(keep);
                    }
                    deploy.handle(Event::Ran(results), now);
                }
            }
        }
        panic!("the deploy never ended: {:?}", self.phases());
    }

    /// Rotation for every host; health only for the hosts asked (as the binary answers).
    fn answer(&self, hosts: &[String], health: &[String]) -> Result<BTreeMap<String, Inspection>, String> {
        if let Some(error) = &self.inspect_error {
            return Err(error.clone());
        }
        let answer = |h: &String| {
            let scripted = self.inspection.get(h).copied().unwrap_or_default();
            let healthy = if health.contains(h) { scripted.healthy.or(Some(true)) } else { None };
            Inspection { healthy, in_rotation: scripted.in_rotation }
        };
        Ok(hosts.iter().map(|h| (h.clone(), answer(h))).collect())
    }

    /// A task's steps in order, up to the first that fails.
    fn run(&self, phase: &str, task: &Task) -> TaskResult {
        let host = task.host.as_str();
        let mut outputs = Vec::new();
        for step in &task.steps {
            let scripted = self.fails.iter().find(|f| (f.host, f.phase, f.kind) == (host, phase, step.kind));
            let failed = match self.held.get(host) {
                Some(holder) if step.kind == Lock => Some((Reason::Exit(3), holder.clone())),
                _ => scripted.map(|f| (f.reason.clone(), f.said.clone())),
            };
            if let Some((reason, said)) = failed {
                if let Reason::Exit(code) = reason {
                    outputs.push(Output { code: Some(code), stdout: said.clone(), stderr: String::new() });
                }
                let failure = StepFailure { host: host.into(), step: step.kind, command: String::new(), reason, output: said.into() };
                return TaskResult { outputs, failure: Some(failure) };
            }
            let stdout = self.says.get(&(host.to_owned(), step.kind)).cloned().unwrap_or_default();
            outputs.push(Output { code: Some(0), stdout, stderr: String::new() });
        }
        TaskResult { outputs, failure: None }
    }

    fn phases(&self) -> Vec<&'static str> {
        self.log.iter().map(|(p, _)| *p).collect()
    }

    /// Each round run in `phase`: per task, its host and the kinds of its steps.
    fn runs(&self, phase: &str) -> Vec<Vec<(&str, Vec<StepKind>)>> {
        let rounds = self.log.iter().filter(|(p, _)| *p == phase).filter_map(|(_, r)| match r {
            Request::Run(tasks) => Some(tasks),
            _ => None,
        });
        rounds.map(|tasks| tasks.iter().map(|t| (t.host.as_str(), t.steps.iter().map(|s| s.kind).collect())).collect()).collect()
    }
}

/// One round: these hosts, each with these step kinds.
fn each<'a>(hosts: &[&'a str], kinds: &[StepKind]) -> Vec<(&'a str, Vec<StepKind>)> {
    hosts.iter().map(|h| (*h, kinds.to_vec())).collect()
}

fn outcomes<const N: usize>(pairs: [(&str, Outcome); N]) -> BTreeMap<String, Outcome> {
    pairs.into_iter().map(|(h, o)| (h.to_owned(), o)).collect()
}

fn failure_of(report: &Report) -> (&str, StepKind, &Reason) {
    let failure = report.failure.as_ref().expect("a failure");
    (failure.host.as_str(), failure.step, &failure.reason)
}

// ---- lock -------------------------------------------------------------------------

#[test]
fn the_first_host_is_locked_alone_then_the_others_at_once_then_all_are_inspected() {
    let config = pair();
    let mut d = deploy(&config);
    assert_eq!(d.phase(), "lock");
    let mut world = World::fleet(&config);
    world.drive_until(&mut d, Some("stage"));
    assert_eq!(world.phases(), ["lock", "lock", "inspect"]);
    assert_eq!(world.runs("lock"), [each(&["web1"], LOCK), each(&["web2", "web3"], LOCK)]);
    assert_eq!(world.log[2].1, Request::Inspect { version: "1.1.0".into(), health: vec![] }, "no host runs 1.1.0: none is asked");
    assert_eq!(d.facts().keys().collect::<Vec<_>>(), ["web1", "web2", "web3"]);
    assert_eq!(d.facts()["web3"].current.as_deref(), Some("1.0.0"));
    assert!(d.facts()["web3"].disabled && d.facts()["web1"].healthy.is_none(), "health is asked of hosts at the version only");
}

#[test]
fn a_lock_held_on_the_first_host_ends_at_once_naming_its_holder() {
    let config = pair();
    let mut world = World::fleet(&config).held_by("web1", &owner("bob"));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "done"], "nothing to unlock: the lock is bob's");
    assert_eq!(report.result, AppResult::Locked(owner("bob")));
    assert_eq!(failure_of(&report), ("web1", Lock, &Reason::Exit(3)));
    assert_eq!((report.from.as_str(), report.to.as_str(), report.outcomes.len()), ("?", "1.1.0", 0));
}

#[test]
fn a_lock_held_on_a_later_host_unlocks_the_hosts_already_locked() {
    let config = pair();
    let mut world = World::fleet(&config).held_by("web2", &owner("bob"));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web3"], UNLOCK)], "bob's lock on web2 is left alone");
    assert_eq!(report.result, AppResult::Locked(owner("bob")));
    assert_eq!(failure_of(&report).0, "web2");
}

#[test]
fn a_lock_that_fails_for_another_reason_is_not_taken_and_nothing_goes_on() {
    let config = pair();
    let mut world = World::fleet(&config).fail_saying("web1", "lock", Lock, Reason::Exit(4), "No space left on device");
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "done"]);
    assert_eq!(report.result, AppResult::Failed);
    assert_eq!(report.message.as_deref(), Some("nothing was switched"));
    assert_eq!(failure_of(&report), ("web1", Lock, &Reason::Exit(4)));
}

#[test]
fn a_lock_failing_beside_one_held_elsewhere_fails_the_deploy_and_unlocks_only_the_first_host() {
    let config = pair();
    let lost = Reason::ConnectionLost("reset".into());
    let mut world = World::fleet(&config).held_by("web2", &owner("bob")).fail("web3", "lock", Lock, lost.clone());
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.runs("unlock"), [each(&["web1"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Failed, "a failure outranks a lock held elsewhere");
    assert_eq!(failure_of(&report), ("web3", Lock, &lost));
}

#[test]
fn a_probe_that_fails_after_its_lock_fails_the_deploy_and_that_host_is_unlocked_too() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web2", "lock", Probe, Reason::Exit(1));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)]);
    assert_eq!((&report.result, failure_of(&report).1), (&AppResult::Failed, Probe));
}

#[test]
fn a_task_left_without_a_result_counts_as_a_failure() {
    let config = pair();
    let mut world = World { short: Some((("lock", 1), 1)), ..World::fleet(&config) };
    let report = world.drive(&mut deploy(&config));
    assert_eq!(report.result, AppResult::Failed);
    assert_eq!(failure_of(&report).2, &Reason::Kai("no result was reported for this task".into()));
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)], "web3's lock may have been taken");
}

// ---- inspect and plan -------------------------------------------------------------

#[test]
fn an_inspect_error_fails_the_deploy_before_planning_and_unlocks_every_host() {
    let config = pair();
    let mut world = World { inspect_error: Some("haproxy did not answer".into()), ..World::fleet(&config) };
    let mut d = deploy(&config);
    let report = world.drive(&mut d);
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Failed);
    assert_eq!(failure_of(&report), ("balancer", Probe, &Reason::Kai("haproxy did not answer".into())));
    assert!(d.plan().is_none());
}

#[test]
fn hosts_already_running_the_version_are_up_to_date_and_only_unlocked() {
    let config = pair();
    let mut world = World::at(&config, "1.1.0", &["1.1.0", "1.0.0"]);
    let mut d = deploy(&config);
    let report = world.drive(&mut d);
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)], "no record: nothing changed");
    assert_eq!(report.result, AppResult::UpToDate);
    assert_eq!((report.from.as_str(), report.to.as_str()), ("1.1.0", "1.1.0"));
    assert!(report.outcomes.is_empty() && report.notes.is_empty() && report.failure.is_none());
    assert!(d.plan().is_some_and(|p| p.is_noop()));
}

#[test]
fn an_unhealthy_server_already_on_the_version_is_restarted_in_place() {
    let config = pair();
    let mut world = World::at(&config, "1.1.0", &["1.1.0", "1.0.0"]).inspect("web2", Some(false), None);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "roll", "record", "done"], "nothing to stage");
    let health = vec!["web1".to_owned(), "web2".into()];
    assert_eq!(world.log[2].1, Request::Inspect { version: "1.1.0".into(), health }, "the actives at the version, not the standby");
    assert_eq!(world.runs("roll"), [each(&["web2"], &[Started, Stop, Install, Start, Health])]);
    assert_eq!(world.runs("record"), [vec![("web1", UNLOCK.to_vec()), ("web2", FINISH.to_vec()), ("web3", UNLOCK.to_vec())]]);
    assert_eq!(report.result, AppResult::Deployed);
    assert_eq!(report.outcomes, outcomes([("web2", Outcome::Ok)]));
}

#[test]
fn a_plan_error_records_not_switched_on_every_host_and_unlocks() {
    let config = pair();
    let mut world = World::fleet(&config);
    let tight = probe(&config, "web2", "1.0.0", &["1.0.0"]).replace("free_kb\t99999999", "free_kb\t1");
    world.says.insert(("web2".into(), Probe), tight);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], FINISH)]);
    assert_eq!(report.result, AppResult::Failed);
    let message = "web2: 0 MiB free in the app home, 1 MiB needed to stage hello (3 × the artifact)";
    assert_eq!(report.message.as_deref(), Some(message));
}

#[test]
fn a_rollback_without_an_earlier_release_fails_before_inspecting() {
    let config = pair();
    let mut world = World::fleet(&config);
    let report = world.drive(&mut Deploy::new(ctx(&config, What::Rollback(None))));
    assert_eq!(world.phases(), ["lock", "lock", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Failed);
    assert_eq!(report.message.as_deref(), Some("hello has no earlier release on its servers in test to roll back to"));
}

#[test]
fn a_deploy_to_no_host_ends_before_anything_is_locked() {
    let config = pair();
    let mut context = ctx(&config, What::Deploy(Box::new(release())));
    context.options.only = vec!["web9".into()];
    let d = Deploy::new(context);
    assert_eq!((d.poll(), d.phase()), (&Request::Done, "done"));
    assert_eq!(d.report().result, AppResult::Failed);
    assert_eq!(d.report().message.as_deref(), Some("no host of hello in test matches --only"));
}

#[test]
fn a_server_found_out_of_rotation_is_named_as_it_is_switched_again() {
    let config = pair();
    let mut world = World::fleet(&config).inspect("web1", None, Some(false));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(report.result, AppResult::Deployed);
    let note = "web1 was out of the balancer's rotation (an interrupted deploy?); it is switched again and put back";
    assert_eq!(report.notes, [note]);
}

// ---- stage ------------------------------------------------------------------------

#[test]
fn a_stage_failure_on_one_host_switches_nothing_cleans_up_and_unlocks() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web2", "stage", Fetch, Reason::Exit(1));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "unlock", "done"]);
    assert_eq!(world.runs("stage"), [each(&["web1", "web2", "web3"], STAGE)]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], PUT_BACK)]);
    assert_eq!(report.result, AppResult::Failed);
    assert_eq!(report.message.as_deref(), Some("nothing was switched"));
    assert_eq!(failure_of(&report), ("web2", Fetch, &Reason::Exit(1)));
    let expected = outcomes([("web1", Outcome::NotSwitched), ("web2", Outcome::Failed), ("web3", Outcome::NotSwitched)]);
    assert_eq!(report.outcomes, expected);
}

// ---- roll -------------------------------------------------------------------------

#[test]
fn a_deploy_stages_everywhere_rolls_the_actives_one_at_a_time_then_the_standby_and_records() {
    let config = pair();
    let mut world = World::fleet(&config);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "standby", "record", "done"]);
    assert_eq!(world.runs("roll"), [each(&["web1"], ROLL), each(&["web2"], ROLL)]);
    assert_eq!(world.runs("standby"), [each(&["web3"], STANDBY)], "a standby stays disabled and stopped");
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], FINISH)]);
    assert_eq!(report.result, AppResult::Deployed);
    assert_eq!((report.from.as_str(), report.to.as_str()), ("1.0.0", "1.1.0"));
    assert_eq!(report.hosts, ["web1", "web2", "web3"]);
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::Ok), ("web2", Outcome::Ok), ("web3", Outcome::Ok)]));
    assert!(report.notes.is_empty() && report.message.is_none() && report.failure.is_none() && !report.lock_kept);
    assert!(report.canary.is_none());
}

#[test]
fn three_active_servers_roll_in_three_waves_of_one_and_old_releases_are_pruned() {
    let config = config("", TRIO, "");
    let mut world = World::at(&config, "1.0.0", &["1.0.0", "0.9.0", "0.8.0"]);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "roll", "record", "done"]);
    assert_eq!(world.runs("roll"), [each(&["web1"], ROLL), each(&["web2"], ROLL), each(&["web3"], ROLL)]);
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], &[Record, Prune, Unlock])]);
    assert_eq!(report.result, AppResult::Deployed);
}

#[test]
fn a_health_failure_on_the_second_server_puts_both_back_newest_first() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web2", "roll", Health, Reason::Kai("status.sh kept failing".into()));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "roll back", "roll back", "record", "done"]);
    assert_eq!(world.runs("roll back"), [each(&["web2"], UNDO), each(&["web1"], UNDO)]);
    assert_eq!(world.runs("record"), [vec![("web1", PUT_BACK.to_vec()), ("web2", PUT_BACK.to_vec()), ("web3", vec![CleanUp, Unlock])]]);
    assert_eq!(report.result, AppResult::RolledBack);
    assert_eq!(failure_of(&report), ("web2", Health, &Reason::Kai("status.sh kept failing".into())));
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::RolledBack), ("web2", Outcome::RolledBack)]));
}

#[test]
fn with_on_failure_halt_only_the_failed_server_goes_back() {
    let config = config("on_failure = \"halt\"", PAIR, "");
    let mut world = World::fleet(&config).fail("web2", "roll", Health, Reason::Exit(1));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "roll back", "record", "done"]);
    assert_eq!(world.runs("roll back"), [each(&["web2"], UNDO)]);
    assert_eq!(report.result, AppResult::Halted);
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::Ok), ("web2", Outcome::RolledBack)]));
}

#[test]
fn a_failed_put_back_keeps_the_lock_and_names_the_stuck_server() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web2", "roll", Health, Reason::Exit(1)).fail("web1", "roll back", Start, Reason::Exit(1));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "roll back", "roll back", "record", "done"]);
    assert_eq!(
        world.runs("record"),
        [vec![("web1", vec![Record, Record]), ("web2", vec![Record, Record]), ("web3", vec![Record])]],
        "the lock-kept record instead of each unlock"
    );
    assert_eq!(report.result, AppResult::RollbackFailed);
    assert!(report.lock_kept);
    assert_eq!(failure_of(&report), ("web2", Health, &Reason::Exit(1)), "the first failure is the one reported");
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::Failed), ("web2", Outcome::RolledBack)]));
    let message = "web1 could not be put back and is in an unknown state; the deploy lock is kept on every host of hello. \
                   Look at web1, then run `kai unlock test hello` and deploy again";
    assert_eq!(report.message.as_deref(), Some(message));
}

#[test]
fn a_step_timing_out_in_the_roll_puts_the_server_back() {
    let config = pair();
    let limit = Reason::TimedOut(Duration::from_secs(75));
    let mut world = World::fleet(&config).fail("web1", "roll", Start, limit.clone());
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.runs("roll"), [each(&["web1"], ROLL)], "web2 never leaves");
    assert_eq!(world.runs("roll back"), [each(&["web1"], UNDO)]);
    assert_eq!((report.result.clone(), failure_of(&report)), (AppResult::RolledBack, ("web1", Start, &limit)));
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::RolledBack)]));
}

#[test]
fn a_roll_left_without_a_result_counts_as_a_failed_server() {
    let config = pair();
    let mut world = World { short: Some((("roll", 0), 0)), ..World::fleet(&config) };
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.runs("roll"), [each(&["web1"], ROLL)]);
    assert_eq!(world.runs("roll back"), [each(&["web1"], UNDO)]);
    assert_eq!(report.result, AppResult::RolledBack);
}

#[test]
fn a_failing_standby_fails_the_deploy_with_every_active_switched() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web3", "standby", Switch, Reason::Exit(1));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "standby", "record", "done"]);
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], FINISH)], "no prune after a failure");
    assert_eq!(report.result, AppResult::Failed);
    let message = "every active server runs the new release, but a standby server could not be switched";
    assert_eq!(report.message.as_deref(), Some(message));
    assert_eq!(failure_of(&report), ("web3", Switch, &Reason::Exit(1)));
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::Ok), ("web2", Outcome::Ok), ("web3", Outcome::Failed)]));
}

#[test]
fn a_start_that_finds_its_port_taken_says_which_process_holds_it() {
    let config = pair();
    let said = "java.net.BindException: Address already in use\nkai: pid 7591 runs from release 1.0.0, not the current one, listening on 0.0.0.0:8080";
    let mut world = World::fleet(&config).fail_saying("web1", "roll", Start, Reason::Exit(1), said);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(report.result, AppResult::RolledBack);
    assert_eq!(report.notes, ["web1: the port 8080 is taken by pid 7591 (release 1.0.0): stop it, then deploy again"]);
}

// ---- canary -----------------------------------------------------------------------

fn verdict(word: &str) -> Verdict {
    let figures = |servers: &[&str], requests, errors: u64| Figures {
        servers: servers.iter().map(|s| (*s).to_owned()).collect(),
        requests,
        errors,
        error_ratio: errors as f64 / requests as f64,
        mean_ms: Some(12.5),
        ..Figures::default()
    };
    let (canary, baseline) = (figures(&["web1"], 400, 20), figures(&["web2", "web3"], 800, 2));
    Verdict { verdict: word.into(), reason: format!("{word} canary"), canary, baseline, window_ms: 60_000 }
}

fn canary_config() -> Config {
    config("", TRIO, "[canary]\nhosts = 1\njudge_command = \"bin/judge.sh\"")
}

#[test]
fn a_judged_canary_wave_puts_its_verdict_in_the_report() {
    let config = canary_config();
    let mut world = World::fleet(&config).say("web1", Judge, &serde_json::to_string(&verdict("good")).expect("a verdict serializes"));
    let report = world.drive(&mut deploy(&config));
    let judged: Vec<StepKind> = ROLL.iter().copied().chain([Judge]).collect();
    assert_eq!(world.runs("roll"), [vec![("web1", judged)], each(&["web2"], ROLL), each(&["web3"], ROLL)]);
    assert_eq!(report.result, AppResult::Deployed);
    assert_eq!(report.canary, Some(verdict("good")));
}

#[test]
fn a_bad_canary_goes_back_alone_and_its_failure_shows_the_figures() {
    let config = canary_config();
    let json = serde_json::to_string(&verdict("bad")).expect("a verdict serializes");
    let mut world = World::fleet(&config).fail_saying("web1", "roll", Judge, Reason::Kai("the canary is bad".into()), &json);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.runs("roll").len(), 1, "the other waves never start");
    assert_eq!(world.runs("roll back"), [each(&["web1"], UNDO)]);
    assert_eq!(report.result, AppResult::RolledBack);
    assert_eq!(report.canary, Some(verdict("bad")));
    assert_eq!(report.failure.map(|f| f.output.raw().to_owned()), Some(verdict("bad").figures_text()));
}

// ---- rollback and saved plans -----------------------------------------------------

#[test]
fn a_rollback_goes_back_to_the_release_before_and_ends_reverted() {
    let config = pair();
    let mut world = World::at(&config, "1.1.0", &["1.1.0", "1.0.0"]);
    let report = world.drive(&mut Deploy::new(ctx(&config, What::Rollback(None))));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "roll", "roll", "standby", "record", "done"], "nothing to stage");
    assert_eq!(world.log[2].1, Request::Inspect { version: "1.0.0".into(), health: vec![] });
    assert_eq!(world.runs("roll"), [each(&["web1"], ROLL), each(&["web2"], ROLL)]);
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], FINISH)], "a rollback prunes nothing");
    assert_eq!(report.result, AppResult::Reverted);
    assert_eq!((report.from.as_str(), report.to.as_str()), ("1.1.0", "1.0.0"));
    assert!(report.notes.is_empty(), "every release's settings are recorded: {:?}", report.notes);
}

/// A plan saved from the fleet on 1.0.0, as `kai plan --out` keeps it.
fn saved(config: &Config) -> What {
    let mut d = deploy(config);
    World::fleet(config).drive_until(&mut d, Some("stage"));
    let plan = Box::new(d.plan().expect("a plan").clone());
    What::Saved { plan, facts: fingerprint::summaries(d.facts()), release: Some(Box::new(release())), owner: owner("ann") }
}

#[test]
fn a_saved_plan_made_from_the_same_hosts_is_applied_step_for_step() {
    let config = pair();
    let What::Saved { plan, .. } = saved(&config) else { unreachable!() };
    let mut world = World::fleet(&config);
    let report = world.drive(&mut Deploy::new(ctx(&config, saved(&config))));
    let stage: Vec<_> = plan.stage.iter().map(|h| (h.host.as_str(), h.steps.iter().map(|s| s.kind).collect())).collect();
    assert_eq!(world.runs("stage"), [stage]);
    assert_eq!(world.runs("roll").len(), 2);
    assert_eq!(report.result, AppResult::Deployed);
}

#[test]
fn a_saved_plan_is_refused_when_a_host_changed_since() {
    let config = pair();
    let what = saved(&config);
    let What::Saved { facts: then, .. } = &what else { unreachable!() };
    let then = then.clone();
    let mut world = World::fleet(&config);
    world.says.insert(("web2".into(), Probe), probe(&config, "web2", "1.0.1", &["1.0.1", "1.0.0"]));
    let mut d = Deploy::new(ctx(&config, what));
    let report = world.drive(&mut d);
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Refused);
    let changes = fingerprint::changes(&then, &fingerprint::summaries(d.facts()));
    assert!(changes.iter().all(|c| c.starts_with("web2: ")) && !changes.is_empty(), "{changes:?}");
    let message = format!("the hosts changed since the plan was made; nothing was changed:\n  {}", changes.join("\n  "));
    assert_eq!(report.message, Some(message));
}

#[test]
fn a_saved_plan_that_is_not_the_plan_kai_makes_is_refused() {
    let config = pair();
    let What::Saved { mut plan, facts, release, owner } = saved(&config) else { unreachable!() };
    plan.roll[1].roll.retain(|s| s.kind != Health);
    let mut world = World::fleet(&config);
    let report = world.drive(&mut Deploy::new(ctx(&config, What::Saved { plan, facts, release, owner })));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "unlock", "done"]);
    assert_eq!(report.result, AppResult::Refused);
    let message = report.message.unwrap_or_default();
    assert!(message.starts_with("the saved plan is not the plan kai makes of it now (was the file changed?)"), "{message}");
}

// ---- stop -------------------------------------------------------------------------

#[test]
fn a_stop_before_anything_is_locked_ends_at_once() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("lock", 0);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["stop", "done"]);
    assert_eq!(report.result, AppResult::Interrupted);
    assert_eq!(report.message.as_deref(), Some("interrupted before anything was locked; nothing changed"));
}

#[test]
fn a_stop_while_locking_the_others_unlocks_the_first_host() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("lock", 1);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "stop", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Interrupted);
    assert_eq!(report.message.as_deref(), Some("interrupted before any server was switched; nothing changed"));
}

#[test]
fn a_stop_while_inspecting_unlocks_every_host() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("inspect", 0);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "stop", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Interrupted);
}

#[test]
fn a_stop_before_staging_unlocks_and_changes_nothing() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("stage", 0);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stop", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web1", "web2", "web3"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Interrupted);
    assert_eq!(report.message.as_deref(), Some("interrupted before any server was switched; nothing changed"));
    assert!(report.outcomes.is_empty());
}

#[test]
fn a_stop_during_the_roll_lets_the_wave_finish_and_starts_no_other() {
    let config = config("", TRIO, "");
    let mut world = World::fleet(&config).stop_at("roll", 1);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "stop", "record", "done"]);
    assert_eq!(world.runs("record"), [vec![("web1", FINISH.to_vec()), ("web2", UNLOCK.to_vec()), ("web3", UNLOCK.to_vec())]]);
    assert_eq!(report.result, AppResult::Interrupted);
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::Interrupted)]), "web2 and web3 were never touched");
    assert_eq!(report.message.as_deref(), Some("interrupted: web1 switched to 1.1.0; web2, web3 not switched"));
}

#[test]
fn a_stop_before_the_first_wave_switches_nothing() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("roll", 0);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Interrupted);
    assert_eq!(report.message.as_deref(), Some("interrupted before any server was switched; nothing changed"));
}

#[test]
fn a_stop_during_an_undo_lets_it_go_on() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web2", "roll", Health, Reason::Exit(1)).stop_at("roll back", 1);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "roll back", "stop", "roll back", "record", "done"]);
    assert_eq!(world.runs("roll back"), [each(&["web2"], UNDO), each(&["web1"], UNDO)]);
    assert_eq!(report.result, AppResult::RolledBack);
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::RolledBack), ("web2", Outcome::RolledBack)]));
}

#[test]
fn a_stop_before_the_standby_records_the_actives_as_interrupted() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("standby", 0);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "stop", "record", "done"]);
    assert_eq!(world.runs("record"), [vec![("web1", FINISH.to_vec()), ("web2", FINISH.to_vec()), ("web3", UNLOCK.to_vec())]]);
    assert_eq!(report.result, AppResult::Interrupted);
    assert_eq!(report.outcomes, outcomes([("web1", Outcome::Interrupted), ("web2", Outcome::Interrupted)]));
    assert_eq!(report.message.as_deref(), Some("interrupted: web1, web2 switched to 1.1.0; web3 not switched"));
}

#[test]
fn a_stop_while_recording_changes_nothing_more() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("record", 0);
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], FINISH)]);
    assert_eq!(report.result, AppResult::Deployed);
}

// ---- finish -----------------------------------------------------------------------

#[test]
fn a_record_that_fails_is_noted_and_its_host_is_unlocked_after() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web2", "record", Record, Reason::Exit(1));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases(), ["lock", "lock", "inspect", "stage", "roll", "roll", "standby", "record", "unlock", "done"]);
    assert_eq!(world.runs("unlock"), [each(&["web2"], UNLOCK)]);
    assert_eq!(report.result, AppResult::Deployed);
    assert_eq!(report.notes, ["web2: record failed: exit status 1"]);
}

#[test]
fn an_unlock_that_fails_at_the_end_is_noted_and_not_tried_again() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web1", "record", Unlock, Reason::Unreachable("no route to host".into()));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.phases().last(), Some(&"done"));
    assert!(world.runs("unlock").is_empty());
    assert_eq!(report.notes, ["web1: unlock failed: unreachable: no route to host"]);
}

#[test]
fn a_release_kept_by_the_prune_is_noted() {
    let config = pair();
    let mut world =
        World::at(&config, "1.0.0", &["1.0.0", "0.9.0", "0.8.0"]).say("web1", Prune, "kept releases/0.9.0: pid 7591 runs from it\n");
    let report = world.drive(&mut deploy(&config));
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], &[Record, Prune, Unlock])]);
    assert_eq!(report.notes, ["web1: kept releases/0.9.0: pid 7591 runs from it"]);
}

// ---- what looks wrong -------------------------------------------------------------

#[test]
fn an_unlock_that_fails_while_giving_up_is_noted() {
    let config = pair();
    let mut world = World::fleet(&config).fail("web2", "stage", Fetch, Reason::Exit(1)).fail("web1", "unlock", Unlock, Reason::Exit(1));
    let report = world.drive(&mut deploy(&config));
    assert_eq!(report.result, AppResult::Failed);
    assert_eq!(report.notes, ["web1: unlock failed: exit status 1"], "the lock stays on web1: the person must know");
}

#[test]
fn an_answer_of_the_wrong_kind_is_ignored() {
    let config = pair();
    let mut d = deploy(&config);
    World::fleet(&config).drive_until(&mut d, Some("inspect"));
    d.handle(Event::Ran(Vec::new()), SystemTime::UNIX_EPOCH);
    assert!(matches!(d.poll(), Request::Inspect { .. }), "{:?}", d.poll());
    assert_eq!(d.phase(), "inspect");
}

#[test]
fn a_rollback_after_a_deploy_that_switched_nothing_does_not_go_to_its_staged_release() {
    let config = pair();
    let mut world = World::fleet(&config).stop_at("roll", 0);
    world.drive(&mut deploy(&config));
    assert_eq!(world.runs("record"), [each(&["web1", "web2", "web3"], UNLOCK)], "1.1.0 stays staged on every host");
    // The hosts as that deploy left them: 1.1.0 staged (newest), 1.0.0 current.
    let mut world = World::at(&config, "1.0.0", &["1.1.0", "1.0.0"]);
    let report = world.drive(&mut Deploy::new(ctx(&config, What::Rollback(None))));
    assert_eq!(world.phases(), ["lock", "lock", "unlock", "done"], "there is no release staged before 1.0.0");
    assert_eq!(report.result, AppResult::Failed);
}
