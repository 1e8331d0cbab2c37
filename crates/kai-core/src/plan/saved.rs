//! A saved plan (`kai plan --out FILE`, applied by `kai deploy --plan FILE`): the plan
//! of every app, the facts each was made from and their fingerprint, the release, and
//! the configuration it was made with. Applying it runs exactly these steps, or
//! refuses, naming what changed since.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;
use crate::fingerprint::HostSummary;
use crate::plan::{AppPlan, Options, Release, Source};

/// The version of the saved plan format; another is refused.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// [`FORMAT`].
    pub kai_plan: u32,
    pub env: String,
    /// The fingerprint of the configuration repository's files.
    pub config: String,
    /// Its git commit, when it is a git checkout.
    pub commit: Option<String>,
    /// When and by whom (`user@machine`) it was made.
    pub made: String,
    pub by: String,
    pub force: bool,
    pub only: Vec<String>,
    pub apps: Vec<SavedApp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedApp {
    pub app: String,
    /// The artifact (none for a rollback: nothing is staged).
    pub release: Option<Release>,
    pub plan: AppPlan,
    /// What each host held when the plan was made.
    pub facts: BTreeMap<String, HostSummary>,
    /// The fingerprint of `facts`.
    pub fingerprint: String,
}

impl SavedPlan {
    /// The run options the plan was made with, under a new run id.
    pub fn options(&self, run_id: String) -> Options {
        Options { run_id, force: self.force, only: self.only.clone() }
    }
}

impl SavedApp {
    /// Who made the plan, as its lock steps name them: the plan made again with this
    /// owner carries the same history records and lock. `None` when the plan holds no
    /// lock owner kai wrote.
    pub fn owner(&self) -> Option<crate::facts::LockOwner> {
        let step = self.plan.lock.first()?.steps.first()?;
        let crate::step::Action::Run(command) = &step.action else { return None };
        let Some(crate::shell::command::Input::Text(owner)) = &command.stdin else { return None };
        serde_json::from_str(owner.trim()).ok()
    }
}

/// The release a saved plan's repository artifact runs as, `now` being the repository's
/// release of that version read again: refused (why, in words) when the artifact is
/// not the one planned (another checksum, or fetched from elsewhere).
pub fn same_artifact(planned: &Release, mut now: Release) -> Result<Release, String> {
    let same_source = match (&now.source, &planned.source) {
        // Where this machine keeps the artifact is its own; the checksum says it is the one.
        (Source::Push { .. }, Source::Push { .. }) => true,
        (now, planned) => now == planned,
    };
    if now.checksum != planned.checksum || !same_source {
        return Err(format!(
            "the artifact changed since the plan was made (planned {} from {}, now {} from {})",
            planned.checksum,
            planned.source.describe(),
            now.checksum,
            now.source.describe()
        ));
    }
    now.promoted_from.clone_from(&planned.promoted_from);
    Ok(now)
}

/// The local build a saved plan pushes, given the checksum of its file now (or why it
/// could not be read): refused when the file is not the one planned.
pub fn same_local_build(planned: &Release, now: Result<Checksum, String>) -> Result<Release, String> {
    let Source::Push { local: file } = &planned.source else {
        return Err("a local build that is not pushed from this machine (was the file changed?)".into());
    };
    if now.as_ref().ok() != Some(&planned.checksum) {
        return Err(format!(
            "the local build changed since the plan was made (planned {} of {}, now {})",
            planned.checksum,
            file.display(),
            now.map_or_else(|e| e, |c| c.to_string())
        ));
    }
    Ok(planned.clone())
}

/// The first way a saved plan differs from the plan made again now (from the
/// configuration, the hosts and the artifact as they are), in words naming the phase,
/// the host and the step; `None` when the two are the same plan, step for step. Both
/// are compared as a saved plan writes them (masked inputs as digests).
pub fn first_difference(saved: &AppPlan, derived: &AppPlan) -> Option<String> {
    let (a, b) = (to_value(saved), to_value(derived));
    if a == b {
        return None;
    }
    let (path, was, now) = diverge(&a, &b, String::new()).unwrap_or_default();
    Some(match locate(&path, &a, &b) {
        Some((phase, host, n, was_step, now_step)) => format!(
            "{phase}, {host}, step {n}: the plan says `{}`, kai makes `{}`",
            step_text(was_step.as_ref()),
            step_text(now_step.as_ref())
        ),
        None => format!("{}: the plan says {}, kai makes {}", path.trim_start_matches('.'), short(&was), short(&now)),
    })
}

/// The plan as a saved plan holds it, but for the local path of an upload: where this
/// machine keeps the artifact is not the plan's (a plan made on one machine is applied
/// on another); what reaches the host is checked by the checksum in the command.
fn to_value(plan: &AppPlan) -> serde_json::Value {
    let mut value = serde_json::to_value(plan).expect("a plan always serializes");
    forget_upload_paths(&mut value);
    value
}

fn forget_upload_paths(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(upload)) = map.get_mut("upload") {
                upload.insert("local".into(), Value::Null);
            }
            map.values_mut().for_each(forget_upload_paths);
        }
        Value::Array(items) => items.iter_mut().for_each(forget_upload_paths),
        _ => {}
    }
}

/// The path to the first place two values differ (`.roll[0].undo[3].action`), and the
/// two values there.
fn diverge(a: &serde_json::Value, b: &serde_json::Value, path: String) -> Option<(String, serde_json::Value, serde_json::Value)> {
    use serde_json::Value;
    if a == b {
        return None;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .find_map(|k| diverge(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), format!("{path}.{k}")))
        }
        (Value::Array(x), Value::Array(y)) => {
            let n = x.len().max(y.len());
            (0..n).find_map(|i| diverge(x.get(i).unwrap_or(&Value::Null), y.get(i).unwrap_or(&Value::Null), format!("{path}[{i}]")))
        }
        _ => Some((path, a.clone(), b.clone())),
    }
}

/// A step the path runs through: its phase, host, number (from 1) and both sides.
type Located = (String, String, usize, Option<crate::step::Step>, Option<crate::step::Step>);

fn locate(path: &str, a: &serde_json::Value, b: &serde_json::Value) -> Option<Located> {
    let parts: Vec<&str> = path.trim_start_matches('.').split(['.', '[', ']']).filter(|p| !p.is_empty()).collect();
    let (pointer, phase, host_pointer) = match parts.as_slice() {
        [phase @ ("lock" | "stage" | "standby" | "finish" | "abort" | "unlock"), i, "steps", j, ..] => {
            (format!("/{phase}/{i}/steps/{j}"), (*phase).to_owned(), format!("/{phase}/{i}/host"))
        }
        ["roll", i, side @ ("roll" | "undo"), j, ..] => {
            let phase = if *side == "undo" { "roll (undo)" } else { "roll" };
            (format!("/roll/{i}/{side}/{j}"), phase.to_owned(), format!("/roll/{i}/host"))
        }
        _ => return None,
    };
    let n = pointer.rsplit('/').next()?.parse::<usize>().ok()? + 1;
    let host = a.pointer(&host_pointer).or_else(|| b.pointer(&host_pointer)).and_then(|h| h.as_str()).unwrap_or("?").to_owned();
    let step = |v: &serde_json::Value| v.pointer(&pointer).and_then(|s| serde_json::from_value(s.clone()).ok());
    Some((phase, host, n, step(a), step(b)))
}

fn step_text(step: Option<&crate::step::Step>) -> String {
    match step {
        Some(step) => crate::table::printable(&step.action.to_string().replace('\n', " ⏎ ")),
        None => "(no step)".to_owned(),
    }
}

fn short(value: &serde_json::Value) -> String {
    let text = crate::table::printable(&value.to_string());
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::command::{Command, Input};
    use crate::step::{Step, StepKind};

    fn release(hex: &str, source: Source) -> Release {
        Release {
            version: "1.1.0".into(),
            file_name: "hello-1.1.0.tar.gz".into(),
            checksum: Checksum { algorithm: crate::checksum::Algorithm::Sha256, hex: hex.repeat(32) },
            size: Some(1000),
            source,
            local: None,
            promoted_from: Some("test".into()),
        }
    }

    #[test]
    fn a_saved_artifact_runs_only_when_it_is_the_one_planned() {
        let pushed = |path: &str| Source::Push { local: path.into() };
        let pulled = |url: &str| Source::Pull { url: url.into(), auth: false };
        let planned = release("ab", pushed("/cache/a"));
        let now = Release { promoted_from: None, ..release("ab", pushed("/other-cache/a")) };
        assert_eq!(same_artifact(&planned, now).map(|r| r.promoted_from), Ok(Some("test".into())), "the cache is this machine's own");
        let why = same_artifact(&planned, release("cd", pushed("/cache/a"))).unwrap_err();
        assert!(why.starts_with("the artifact changed since the plan was made (planned sha256:abab"), "{why}");
        let planned = release("ab", pulled("https://repo/a"));
        assert!(same_artifact(&planned, release("ab", pulled("https://repo/a"))).is_ok());
        let why = same_artifact(&planned, release("ab", pulled("https://mirror/a"))).unwrap_err();
        assert!(why.ends_with("from hosts download https://mirror/a)"), "{why}");
    }

    #[test]
    fn a_saved_local_build_runs_only_when_its_file_is_unchanged() {
        let planned = release("ab", Source::Push { local: "/work/hello-1.1.0.tar.gz".into() });
        assert_eq!(same_local_build(&planned, Ok(planned.checksum.clone())), Ok(planned.clone()));
        let other = Checksum { hex: "cd".repeat(32), ..planned.checksum.clone() };
        let why = same_local_build(&planned, Ok(other)).unwrap_err();
        assert!(why.starts_with("the local build changed since the plan was made"), "{why}");
        assert!(same_local_build(&planned, Err("No such file".into())).unwrap_err().ends_with("now No such file)"));
        let pulled = release("ab", Source::Pull { url: "https://repo/a".into(), auth: false });
        assert!(same_local_build(&pulled, Ok(pulled.checksum.clone())).is_err());
    }

    /// hello 1.1.0 onto two hosts running 1.0.0, through the planner.
    fn plan() -> AppPlan {
        use crate::config::{load, ConfigSources, SourceFile};
        let file = |path: &str, text: &str| SourceFile { path: path.into(), text: text.to_owned() };
        let sources = ConfigSources {
            root: "/cfg".into(),
            kai_toml: file("kai.toml", "[repository]\nurl = \"/repo\"\ngroup = \"org.example\"\n"),
            environments: vec![file(
                "environments/test.toml",
                "transport = \"local\"\n[hosts]\nweb1 = { address = \"10.0.0.1\", root = \"/h/web1\" }\nweb2 = { address = \"10.0.0.2\", root = \"/h/web2\" }\n",
            )],
            apps: vec![file(
                "apps/hello.toml",
                "packaging = \"tar.gz\"\nuser = \"hello\"\nstart = \"bin/start.sh\"\nstop = \"bin/stop.sh\"\nproperties_file = \"app.properties\"\n\
                 [properties]\n\"db.password\" = \"hunter2\"\n[env.test]\nservers = [\"web1\", \"web2\"]\n",
            )],
        };
        let config = load(&sources).expect("a valid configuration");
        let release = crate::plan::Release {
            version: "1.1.0".into(),
            file_name: "hello-1.1.0.tar.gz".into(),
            checksum: crate::checksum::Checksum { algorithm: crate::checksum::Algorithm::Sha256, hex: "ab".repeat(32) },
            size: Some(1000),
            source: crate::plan::Source::Push { local: "/cache/hello-1.1.0.tar.gz".into() },
            local: None,
            promoted_from: None,
        };
        let at = crate::facts::parse_probe("current\treleases/1.0.0\nrelease\t1.0.0\t1\nfree_kb\t9999999\n");
        let facts = [("web1".to_owned(), at.clone()), ("web2".to_owned(), at)].into();
        let owner = crate::facts::LockOwner {
            user: "ann".into(),
            machine: "ws1".into(),
            pid: 7,
            since: "2026-01-01T00:00:00Z".into(),
            command: "kai plan".into(),
            hold: None,
        };
        let options = Options { run_id: "r1".into(), ..Options::default() };
        crate::plan::plan_app(&config, "test", &config.apps["hello"], &release, &facts, &owner, &options).expect("a plan")
    }

    #[test]
    fn a_saved_plan_keeps_no_secret_and_names_its_maker() {
        let plan = plan();
        let json = serde_json::to_string(&plan).expect("serializes");
        assert!(!json.contains("hunter2"), "{json}");
        let saved = SavedApp {
            app: "hello".into(),
            release: None,
            plan: serde_json::from_str(&json).expect("reads back"),
            facts: BTreeMap::new(),
            fingerprint: String::new(),
        };
        assert_eq!(saved.owner().map(|o| (o.user, o.pid)), Some(("ann".to_owned(), 7)));
        assert_eq!(first_difference(&saved.plan, &plan), None, "read back, it is the plan it was");
    }

    #[test]
    fn a_masked_input_is_written_as_its_digest_and_read_back_as_one() {
        let command =
            Command::new(["kai_write", "p"]).stdin_input(Input::Masked { text: "pw=hunter2\n".into(), shown: "pw=(secret)\n".into() });
        let json = serde_json::to_string(&command).expect("serializes");
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains(r#""masked":{"digest":"sha256:"#), "{json}");
        let back: Command = serde_json::from_str(&json).expect("reads back");
        assert!(matches!(back.stdin, Some(Input::Digest { ref shown, .. }) if shown == "pw=(secret)\n"));
        assert_eq!(serde_json::to_string(&back).expect("serializes"), json, "and is written the same again");
    }

    #[test]
    fn the_same_plan_has_no_difference_and_a_changed_command_is_named_by_phase_host_and_step() {
        let saved = plan();
        assert_eq!(first_difference(&saved, &saved), None);
        let mut tampered = saved.clone();
        tampered.stage[0].steps[1] = Step::run(StepKind::Fetch, Command::new(["sh", "-c", "touch /tmp/x"]));
        let said = first_difference(&tampered, &saved).expect("a difference");
        assert!(
            said.starts_with(&format!("stage, {}, step 2: the plan says `sh -c 'touch /tmp/x'`, kai makes `", saved.stage[0].host)),
            "{said}"
        );
        let mut version = saved.clone();
        version.version = "9.9.9".into();
        assert_eq!(
            first_difference(&version, &saved).expect("a difference"),
            format!("version: the plan says \"9.9.9\", kai makes \"{}\"", saved.version)
        );
    }
}
