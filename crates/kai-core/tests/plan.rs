//! Plan snapshots: one scenario each, the exact commands per host that `kai plan`
//! prints and the executor runs (docs/deploy.md). Everything is pinned: the
//! configuration is inline TOML, hosts are local folders under `/srv/hosts/<host>`,
//! the run id, the lock owner, the release and the host facts are fixed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kai_core::checksum::{Algorithm, Checksum};
use kai_core::config::{load, Config, ConfigSources, SourceFile};
use kai_core::facts::{HostFacts, LockOwner};
use kai_core::plan::{plan_app, AppPlan, Options, PlanError, Release, Source};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER_HEX: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const GIB: u64 = 1024 * 1024 * 1024;

const KAI: &str = r#"[repository]
url = "https://repo.example.org/libs-release"
group = "org.example.services"

[defaults]
keep_releases = 5
"#;

const PROD: &str = r#"transport = "local"
on_failure = "rollback"

[hosts]
app01 = { address = "10.1.0.11", root = "/srv/hosts/app01" }
app02 = { address = "10.1.0.12", root = "/srv/hosts/app02" }
app03 = { address = "10.1.0.13", root = "/srv/hosts/app03" }
app04 = { address = "10.1.0.14", root = "/srv/hosts/my host" }
"#;

const JMSADMIN: &str = r#"artifact = "jmsadmin-assembly"
classifier = "standalone"
packaging = "zip"
user = "jmsadmin"
start = "bin/start.sh"
stop = "bin/stop.sh"
properties_file = "config/app.properties"

[properties]
"jmx.port" = 30
"jvm.xmx" = "128m"
"app.label" = "{app}-{env}-{host}-{version}"
"app.url" = "http://{address}:8080/{app}"

[health]
http = "http://{address}:8080/ready"
timeout = "60s"

[env.prod]
servers = ["app01", "app02"]
[env.prod.properties]
"jvm.xmx" = "512m"
"#;

const TELENORMOBIL: &str = r#"packaging = "tar.gz"
user = "telenor"
start = "bin/start.sh"
stop = "bin/stop.sh"

[health]
command = "bin/status.sh"
timeout = "30s"

[env.prod]
servers = ["app02", "app03"]
"#;

const KVITTERING: &str = r#"artifact = "kvittering-service"
packaging = "jar"
user = "kvitt"
home = "/opt/kvittering"
start = "/usr/local/bin/jarctl start kvittering-service.jar"
stop = "/usr/local/bin/jarctl stop kvittering-service.jar"
properties_file = "application.properties"

[properties]
"server.port" = 8090

[env.prod]
servers = ["app01"]
"#;

const HOSTILE: &str = r#"user = "hostile"
packaging = "zip"
start = "bin/start.sh 'a b;c'"
stop = "bin/stop.sh"
properties_file = "config/app.properties"

[properties]
"cmd" = "$(touch x)"
"quote" = "it's `id` ; rm -rf /"

[env.prod]
servers = ["app04"]
"#;

/// The configuration: kai.toml (`kai`), prod.toml and the given apps, loaded from text.
fn config_with(kai: &str, apps: &[(&str, &str)]) -> Config {
    let file = |path: &str, text: &str| SourceFile { path: PathBuf::from(path), text: text.to_owned() };
    let sources = ConfigSources {
        root: PathBuf::from("/cfg"),
        kai_toml: file("kai.toml", kai),
        environments: vec![file("environments/prod.toml", PROD)],
        apps: apps.iter().map(|(name, text)| file(&format!("apps/{name}.toml"), text)).collect(),
    };
    match load(&sources) {
        Ok(config) => config,
        Err(errors) => panic!("the test configuration is invalid:\n{errors}"),
    }
}

fn config(apps: &[(&str, &str)]) -> Config {
    config_with(KAI, apps)
}

fn owner() -> LockOwner {
    LockOwner {
        user: "ann".into(),
        machine: "ws1".into(),
        pid: 42,
        since: "2026-11-27T10:00:00Z".into(),
        command: "kai deploy prod jmsadmin-10.60.0".into(),
        hold: None,
    }
}

fn options() -> Options {
    Options { run_id: "r1".into(), ..Options::default() }
}

fn checksum() -> Checksum {
    Checksum { algorithm: Algorithm::Sha256, hex: HEX.into() }
}

/// `sha256:<HEX>`: what the planner records for the release under test.
fn recorded() -> String {
    checksum().to_string()
}

fn release(version: &str, file_name: &str) -> Release {
    Release {
        version: version.into(),
        file_name: file_name.into(),
        checksum: checksum(),
        size: Some(1_000_000),
        source: Source::Push { local: PathBuf::from("/cache/x.zip") },
        local: None,
        promoted_from: None,
    }
}

fn jmsadmin_release(version: &str) -> Release {
    release(version, &format!("jmsadmin-assembly-{version}-standalone.zip"))
}

/// A host whose `current` is `current` (if any), with `releases` newest first and 10 GiB free.
fn host(current: Option<&str>, releases: &[&str]) -> HostFacts {
    HostFacts {
        current: current.map(Into::into),
        releases: releases.iter().map(|r| (*r).to_owned()).collect(),
        free_bytes: Some(10 * GIB),
        ..HostFacts::default()
    }
}

/// A host running `version` of `app` as the configuration says now: its artifact
/// recorded, its properties and settings as kai would write them.
fn running(config: &Config, app: &str, host_name: &str, version: &str) -> HostFacts {
    let environment = &config.environments["prod"];
    let app = &config.apps[app];
    HostFacts {
        checksums: BTreeMap::from([(version.to_owned(), recorded())]),
        settings: BTreeMap::from([(version.to_owned(), kai_core::plan::settings_line(environment, app, host_name, version))]),
        properties: kai_core::plan::rendered_properties(environment, app, host_name, version),
        healthy: Some(true),
        ..host(Some(version), &[version, "10.59.0"])
    }
}

fn facts<const N: usize>(hosts: [(&str, HostFacts); N]) -> BTreeMap<String, HostFacts> {
    hosts.into_iter().map(|(name, f)| (name.to_owned(), f)).collect()
}

fn plan(config: &Config, app: &str, release: &Release, facts: &BTreeMap<String, HostFacts>, options: &Options) -> AppPlan {
    try_plan(config, app, release, facts, options).unwrap_or_else(|e| panic!("planning {app} failed: {e}"))
}

fn try_plan(
    config: &Config,
    app: &str,
    release: &Release,
    facts: &BTreeMap<String, HostFacts>,
    options: &Options,
) -> Result<AppPlan, PlanError> {
    plan_app(config, "prod", &config.apps[app], release, facts, &owner(), options)
}

/// The labels of a list of steps, for structural asserts.
fn labels(steps: &[kai_core::plan::Step]) -> Vec<&'static str> {
    steps.iter().map(|s| s.kind.word()).collect()
}

fn upgraded() -> HostFacts {
    host(Some("10.59.0"), &["10.59.0", "10.58.0"])
}

#[test]
fn plain_deploy_to_two_active_servers() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let facts = facts([("app01", upgraded()), ("app02", upgraded())]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    assert!(!plan.is_noop());
    assert_eq!(plan.hosts().collect::<Vec<_>>(), ["app01", "app02"]);
    assert_eq!(plan.target("app01").map(|t| t.home.as_str()), Some("/srv/hosts/app01/home/jmsadmin"));
    assert_eq!(plan.roll.iter().map(|r| r.host.as_str()).collect::<Vec<_>>(), ["app01", "app02"]);
    assert_eq!(labels(&plan.roll[0].roll), ["started", "stop", "switch", "switch", "start", "health"]);
    assert_eq!(labels(&plan.roll[0].undo), ["stop", "stop", "switch back", "switch back", "start", "health"]);
    assert!(plan.standby.is_empty());
    assert!(plan.finish.is_empty(), "2 old releases + the new one fit in keep_releases = 5");
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn deploy_with_a_standby_server() {
    let app = JMSADMIN.replace(r#"servers = ["app01", "app02"]"#, "servers = [\"app01\", \"app02\"]\nstandby = [\"app03\"]");
    let config = config(&[("jmsadmin", &app)]);
    let standby = HostFacts { disabled: true, ..upgraded() };
    let facts = facts([("app01", upgraded()), ("app02", upgraded()), ("app03", standby)]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    assert_eq!(plan.roll.len(), 2);
    assert_eq!(plan.standby.len(), 1);
    assert_eq!(plan.standby[0].host, "app03");
    assert_eq!(labels(&plan.standby[0].steps), ["started", "disable", "stop", "switch", "switch"]);
    assert!(plan.stage.iter().any(|s| s.host == "app03"), "standby servers get the release too");
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn multi_app_deploy() {
    let config = config(&[("jmsadmin", JMSADMIN), ("telenormobil", TELENORMOBIL)]);
    let facts_jms = facts([("app01", upgraded()), ("app02", upgraded())]);
    let jms = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts_jms, &options());
    let telenor_release = release("3.2.1", "telenormobil-3.2.1.tar.gz");
    let facts_telenor = facts([("app02", host(Some("3.2.0"), &["3.2.0"])), ("app03", host(Some("3.2.0"), &["3.2.0"]))]);
    let telenor = plan(&config, "telenormobil", &telenor_release, &facts_telenor, &options());

    assert_eq!(telenor.hosts().collect::<Vec<_>>(), ["app02", "app03"]);
    assert_eq!(telenor.target("app02").map(|t| t.home.as_str()), Some("/srv/hosts/app02/home/telenor"));
    let text = telenor.to_string();
    assert!(text.contains("tar -xzpf downloads/telenormobil-3.2.1.tar.gz"), "{text}");
    assert!(text.contains("cd current && bin/status.sh    # [kai] repeated until exit 0 (timeout 30s), then exit 0 for 3s"), "{text}");
    assert!(!text.contains("app.properties"), "telenormobil has no properties file: {text}");
    insta::assert_snapshot!(format!("{jms}\n{telenor}"));
}

#[test]
fn redeploy_of_the_running_version_is_a_noop() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let at_target = |h: &str| running(&config, "jmsadmin", h, "10.60.0");
    let facts = facts([("app01", at_target("app01")), ("app02", at_target("app02"))]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    assert!(plan.is_noop());
    assert!(plan.targets.iter().all(|t| !t.change));
    assert!(plan.stage.is_empty() && plan.roll.is_empty() && plan.finish.is_empty() && plan.abort.is_empty());
    let text = plan.to_string();
    assert!(text.contains("nothing to do: 10.60.0 already runs on every host"), "{text}");
    insta::assert_snapshot!(text);
}

// With --force on a host already at the version, nothing is staged: the server is
// restarted in place, its properties rewritten only while it is stopped (docs/deploy.md
// "Nothing running changes").
#[test]
fn forced_redeploy_of_the_running_version() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let at_target = |h: &str| running(&config, "jmsadmin", h, "10.60.0");
    let facts = facts([("app01", at_target("app01")), ("app02", at_target("app02"))]);
    let forced = Options { force: true, ..options() };
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &forced);

    assert!(!plan.is_noop());
    assert!(plan.targets.iter().all(|t| t.change && t.why == ["forced"]));
    assert!(plan.stage.is_empty(), "nothing to stage: the release is there");
    assert_eq!(labels(&plan.roll[0].roll), ["started", "stop", "properties", "install", "start", "health"]);
    assert_eq!(labels(&plan.roll[0].undo), ["stop", "switch back", "switch back", "start", "health"], "the old settings go back");
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn a_property_change_alone_restarts_each_server_with_the_new_properties_and_masks_secrets() {
    let app = JMSADMIN.replace("[properties]\n", "[properties]\n\"db.password\" = \"s3cret\"\n");
    let old = config(&[("jmsadmin", JMSADMIN)]);
    let new = config(&[("jmsadmin", &app.replace("\"jvm.xmx\" = \"512m\"", "\"jvm.xmx\" = \"1g\""))]);
    let facts = facts([("app01", running(&old, "jmsadmin", "app01", "10.60.0")), ("app02", running(&old, "jmsadmin", "app02", "10.60.0"))]);
    let plan = plan(&new, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    assert!(plan.targets.iter().all(|t| t.change && t.in_place("10.60.0")));
    assert_eq!(plan.targets[0].why, ["db.password: (none) -> (secret, not shown)", "jvm.xmx: 512m -> 1g"]);
    assert!(plan.stage.is_empty());
    let text = plan.to_string();
    assert!(!text.contains("s3cret"), "a secret is never shown: {text}");
    assert!(text.contains("db.password=(secret, not shown)"), "{text}");
    assert!(text.contains("app01  active   10.60.0, restarted"), "{text}");
    let rolled: Vec<&str> = plan.roll.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(rolled, ["app01", "app02"], "one server at a time, like a new version");

    let unchanged = config(&[("jmsadmin", JMSADMIN)]);
    let same = crate::plan(&unchanged, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());
    assert!(same.is_noop(), "the same settings: nothing to do");
}

// The undo of a first install stops only if there is a `current` (the roll may have failed
// before the switch), then removes it.
#[test]
fn first_install() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let empty = || host(None, &[]);
    let facts = facts([("app01", empty()), ("app02", empty())]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    for server in &plan.roll {
        assert!(!labels(&server.roll).contains(&"stop"), "nothing runs yet on {}", server.host);
        assert_eq!(labels(&server.roll), ["started", "switch", "switch", "start", "health"]);
        assert_eq!(labels(&server.undo), ["stop", "switch back"]);
        assert_eq!(server.undo.last().map(|s| s.action.to_string()), Some("rm -f current".to_owned()));
    }
    assert!(plan.finish.is_empty());
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn reuse_of_a_staged_release_with_the_matching_checksum() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let staged = || HostFacts {
        checksums: BTreeMap::from([("10.60.0".to_owned(), recorded()), ("10.59.0".to_owned(), format!("sha256:{OTHER_HEX}"))]),
        ..host(Some("10.59.0"), &["10.60.0", "10.59.0", "10.58.0"])
    };
    let facts = facts([("app01", staged()), ("app02", staged())]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    for stage in &plan.stage {
        assert_eq!(labels(&stage.steps), ["prepare", "properties", "install"], "{}", stage.host);
    }
    let text = plan.to_string();
    assert!(!text.contains("[kai] upload") && !text.contains("unzip") && !text.contains("sha256sum"), "{text}");
    assert!(text.contains("kai_write releases/10.60.0/config/app.properties"), "{text}");
    insta::assert_snapshot!(text);
}

// The checksum is recorded only once the release is complete (docs/deploy.md: reuse a release only
// if its recorded checksum matches; a release is complete or absent).
#[test]
fn a_staged_release_with_another_checksum_is_staged_again() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let mismatched = HostFacts {
        checksums: BTreeMap::from([("10.60.0".to_owned(), format!("sha256:{OTHER_HEX}"))]),
        ..host(Some("10.59.0"), &["10.60.0", "10.59.0"])
    };
    let facts = facts([("app01", mismatched), ("app02", upgraded())]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    let app01: Vec<String> = plan.stage[0].steps.iter().map(|s| s.action.to_string()).collect();
    let position = |text: &str| app01.iter().position(|s| s.starts_with(text)).unwrap_or_else(|| panic!("{text} in {app01:?}"));
    // kai_replace: refused while a process runs from it; else the old record, then the old folder.
    assert!(position("kai_replace 10.60.0") < position("mv -T"), "the old release goes first");
    assert!(position("mv -T") < position("kai_write .kai/checksums/10.60.0"), "the new record only after the rename");
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn pruning_keeps_the_newest_and_never_current_nor_previous() {
    let kai = KAI.replace("keep_releases = 5", "keep_releases = 3");
    let config = config_with(&kai, &[("jmsadmin", JMSADMIN)]);
    let old = ["10.59.0", "10.58.0", "10.57.0", "10.56.0", "10.55.0"];
    // app02 was rolled back to an older release: `current` is not the newest folder.
    let facts = facts([("app01", host(Some("10.59.0"), &old)), ("app02", host(Some("10.56.0"), &old))]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    let prune = |host: &str| -> Vec<String> {
        let steps = &plan.finish.iter().find(|f| f.host == host).expect("a prune on every host").steps;
        steps.iter().map(|s| s.action.to_string()).collect()
    };
    assert_eq!(prune("app01"), ["kai_prune 10.57.0 10.56.0 10.55.0"]);
    assert_eq!(prune("app02"), ["kai_prune 10.58.0 10.57.0 10.55.0"]);
    for f in &plan.finish {
        let from = plan.target(&f.host).and_then(|t| t.from.clone()).expect("a previous release");
        let text: String = f.steps.iter().map(|s| s.action.to_string()).collect();
        assert!(!text.split(' ').any(|word| word == from), "{text}");
        assert!(!text.contains("10.60.0"), "{text}");
    }
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn jar_is_copied_as_the_artifact_name() {
    let config = config(&[("kvittering", KVITTERING)]);
    let release = release("2.0.0", "kvittering-service-2.0.0.jar");
    let facts = facts([("app01", host(Some("1.9.0"), &["1.9.0"]))]);
    let plan = plan(&config, "kvittering", &release, &facts, &options());

    assert_eq!(plan.target("app01").map(|t| t.home.as_str()), Some("/srv/hosts/app01/opt/kvittering"));
    let text = plan.to_string();
    assert!(text.contains("cp downloads/kvittering-service-2.0.0.jar releases/.tmp-2.0.0-r1/kvittering-service.jar"), "{text}");
    assert!(!text.contains("unzip") && !text.contains("tar "), "{text}");
    assert!(
        !plan.roll[0].roll.iter().any(|s| s.kind == kai_core::step::StepKind::Health),
        "no [health]: the start command's exit status is the check"
    );
    insta::assert_snapshot!(text);
}

// Temporary folders left by an interrupted stage (the probe lists them with `ls -A`) are
// removed before staging again.
#[test]
fn a_stale_temporary_folder_is_removed_during_stage() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let stale = HostFacts { stale: vec![".tmp-10.60.0-r0".into()], ..upgraded() };
    let facts = facts([("app01", stale), ("app02", upgraded())]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    let app01: Vec<String> = plan.stage[0].steps.iter().map(|s| s.action.to_string()).collect();
    assert_eq!(app01[1], "rm -rf releases/.tmp-10.60.0-r0");
    let app02: Vec<String> = plan.stage[1].steps.iter().map(|s| s.action.to_string()).collect();
    assert!(!app02.iter().any(|c| c.contains(".tmp-10.60.0-r0")), "{app02:?}");
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn not_enough_disk_names_the_host() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let small = HostFacts { free_bytes: Some(2_000_000), ..upgraded() };
    let facts = facts([("app01", upgraded()), ("app02", small)]);
    let err = try_plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options()).expect_err("too little disk");

    assert_eq!(err, PlanError::DiskSpace { app: "jmsadmin".into(), host: "app02".into(), free: 1, needed: 3 });
    assert_eq!(err.to_string(), "app02: 1 MiB free in the app home, 3 MiB needed to stage jmsadmin (3 × the artifact)");
}

#[test]
fn exactly_three_times_the_artifact_is_enough() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let just = HostFacts { free_bytes: Some(3_000_000), ..upgraded() };
    let facts = facts([("app01", just.clone()), ("app02", just)]);
    assert!(try_plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options()).is_ok());
}

#[test]
fn only_with_a_host_of_another_app_selects_nothing() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let facts = facts([("app01", upgraded()), ("app02", upgraded())]);
    let only = Options { only: vec!["app03".into()], ..options() };
    let err = try_plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &only).expect_err("no host selected");

    assert_eq!(err, PlanError::Placement(kai_core::plan::PlacementError::NoHostSelected { app: "jmsadmin".into(), env: "prod".into() }));
    assert_eq!(err.to_string(), "no host of jmsadmin in prod matches --only");
}

#[test]
fn only_restricts_the_plan_to_the_named_hosts() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let facts = facts([("app01", upgraded()), ("app02", upgraded())]);
    let only = Options { only: vec!["app02".into()], ..options() };
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &only);

    assert_eq!(plan.hosts().collect::<Vec<_>>(), ["app02"]);
    assert!(plan.lock.iter().chain(&plan.stage).chain(&plan.unlock).all(|h| h.host == "app02"));
}

// QUESTIONABLE: without --force the same host is silently "up to date" even though its
// recorded checksum says it runs another artifact; the mismatch is only caught with --force.
#[test]
fn current_release_that_differs_from_the_repository_is_refused() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let differs = HostFacts {
        checksums: BTreeMap::from([("10.60.0".to_owned(), format!("sha256:{OTHER_HEX}"))]),
        ..running(&config, "jmsadmin", "app02", "10.60.0")
    };
    let facts = facts([("app01", upgraded()), ("app02", differs)]);
    let forced = Options { force: true, ..options() };
    let err = try_plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &forced).expect_err("current differs");

    assert_eq!(
        err,
        PlanError::CurrentDiffers {
            app: "jmsadmin".into(),
            host: "app02".into(),
            version: "10.60.0".into(),
            recorded: format!("sha256:{OTHER_HEX}"),
            expected: recorded(),
        }
    );
    assert!(err.to_string().starts_with("app02: jmsadmin 10.60.0 is current there but differs"), "{err}");

    let unforced = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());
    assert_eq!(unforced.target("app02").map(|t| t.change), Some(false), "current behaviour: treated as up to date");
}

#[test]
fn a_current_release_without_a_recorded_checksum_is_refused_when_forced() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let unknown = host(Some("10.60.0"), &["10.60.0"]);
    let facts = facts([("app01", unknown.clone()), ("app02", unknown)]);
    let forced = Options { force: true, ..options() };
    let err = try_plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &forced).expect_err("nothing recorded");
    assert!(matches!(&err, PlanError::CurrentDiffers { host, recorded, .. } if host == "app01" && recorded == "nothing"), "{err:?}");
}

#[test]
fn hostile_values_stay_quoted() {
    let config = config(&[("hostile", HOSTILE)]);
    let facts = facts([("app04", host(Some("1.0.0"), &["1.0.0"]))]);
    let plan = plan(&config, "hostile", &release("1.1.0", "hostile-1.1.0.zip"), &facts, &options());
    let text = plan.to_string();

    // Properties travel in a here-document whose delimiter is quoted: nothing is expanded.
    let properties = plan.stage[0].steps.iter().find(|s| s.kind == kai_core::step::StepKind::Properties).expect("a properties step");
    assert_eq!(
        properties.action.to_string(),
        "kai_put releases/.tmp-1.1.0-r1/config/app.properties <<'KAI'\ncmd=$(touch x)\nquote=it's `id` ; rm -rf /\nKAI"
    );
    let hostile: Vec<&str> = text.lines().filter(|l| l.contains("$(touch x)") || l.contains("`id`")).map(str::trim).collect();
    assert_eq!(hostile, ["cmd=$(touch x)", "quote=it's `id` ; rm -rf /"], "only inside the here-document");

    // Configured arguments are quoted; the root with a space never reaches a command
    // (commands run in the app home, with relative paths).
    assert!(text.contains("kai_run .kai/start.log 120 bin/start.sh 'a b;c'"), "{text}");
    assert_eq!(plan.target("app04").map(|t| t.home.as_str()), Some("/srv/hosts/my host/home/hostile"));
    let with_root: Vec<&str> = text.lines().filter(|l| l.contains("my host")).collect();
    assert!(with_root[0].starts_with("  app04  active   1.0.0 -> 1.1.0            home /srv/hosts/my host/home/hostile"), "{with_root:?}");
    assert!(
        with_root[1..].iter().all(|l| l.contains("kai_enter '/srv/hosts/my host/home/hostile'")),
        "only where the home is entered, quoted: {with_root:?}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn the_plan_as_data_holds_the_same_steps_in_the_same_order_as_the_text() {
    let app = JMSADMIN.replace(r#"servers = ["app01", "app02"]"#, "servers = [\"app01\", \"app02\"]\nstandby = [\"app03\"]");
    let config = config(&[("jmsadmin", &app)]);
    let standby = HostFacts { disabled: true, ..upgraded() };
    let facts = facts([("app01", upgraded()), ("app02", upgraded()), ("app03", standby)]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());

    let doc = serde_json::to_value(plan.to_doc()).expect("the plan serializes");

    assert_eq!((doc["app"].as_str(), doc["version"].as_str(), doc["action"].as_str()), (Some("jmsadmin"), Some("10.60.0"), Some("deploy")));
    let phases: Vec<&str> = doc["phases"].as_array().expect("phases").iter().filter_map(|p| p["phase"].as_str()).collect();
    assert_eq!(phases, ["lock", "stage", "roll", "standby", "unlock", "abort"]);
    let roll = &doc["phases"][2];
    assert_eq!(roll["parallel"], false);
    let rolled: Vec<(&str, u64)> =
        roll["hosts"].as_array().expect("roll hosts").iter().filter_map(|h| Some((h["host"].as_str()?, h["wave"].as_u64()?))).collect();
    assert_eq!(rolled, [("app01", 1), ("app02", 2)]);
    assert_eq!(roll["hosts"][0]["steps"][0]["step"], "started");
    assert_eq!(roll["hosts"][0]["steps"][1]["step"], "stop");
    assert_eq!(roll["hosts"][0]["undo"][2]["step"], "switch back");
    assert_eq!(doc["targets"][2]["role"], "standby");
    assert_eq!(doc["targets"][0]["from"], "10.59.0");
    let text = plan.to_string();
    for phase in doc["phases"].as_array().expect("phases") {
        for host in phase["hosts"].as_array().expect("hosts") {
            for step in host["steps"].as_array().expect("steps") {
                let first_line = step["command"].as_str().and_then(|c| c.lines().next()).expect("a command");
                assert!(text.contains(first_line), "{first_line:?} is not in the plan text");
            }
        }
    }
}

/// The commands of `steps`, as sent.
fn commands(steps: &[kai_core::plan::Step]) -> Vec<String> {
    steps.iter().map(|s| s.action.to_string()).collect()
}

// Issue 22: a put-back uses the settings the release ran with. 10.59.0 was installed
// with `bin/start.sh` and a health check on port 8080; the configuration now says
// `bin/strat.sh` (a typo) and port 9090. The new release is started and checked as
// configured; the old one is stopped, started and checked as it was installed.
#[test]
fn a_put_back_starts_stops_and_checks_the_old_release_as_it_was_installed() {
    let typo = JMSADMIN.replace("start = \"bin/start.sh\"", "start = \"bin/strat.sh\"").replace(":8080/ready", ":9090/ready");
    let config = config(&[("jmsadmin", &typo)]);
    let was = kai_core::run_settings::RunSettings {
        start: vec!["bin/start.sh".into()],
        stop: vec!["bin/stop.sh".into(), "--graceful".into()],
        health: kai_core::run_settings::RecordedHealth::Http { url: "http://10.1.0.11:8080/ready".into() },
    };
    let app01 = HostFacts { run_settings: BTreeMap::from([("10.59.0".to_owned(), was)]), ..host(Some("10.59.0"), &["10.59.0"]) };
    let app02 = running(&config, "jmsadmin", "app02", "10.60.0");
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts([("app01", app01), ("app02", app02)]), &options());

    let server = &plan.roll[0];
    assert_eq!(server.host, "app01");
    let roll = commands(&server.roll);
    assert!(
        roll.contains(&"kai_run .kai/start.log 120 bin/stop.sh --graceful".to_owned()),
        "the old release stopped as installed: {roll:?}"
    );
    assert!(roll.contains(&"kai_run .kai/start.log 120 bin/strat.sh".to_owned()), "the new one started as configured: {roll:?}");
    assert!(roll.iter().any(|c| c.contains(":9090/ready")), "and checked as configured: {roll:?}");
    let undo = commands(&server.undo);
    assert_eq!(
        undo.iter().filter(|c| c.starts_with("kai_run")).cloned().collect::<Vec<_>>(),
        [
            "kai_run_for 10.60.0 .kai/start.log 120 bin/stop.sh",
            "kai_run_for 10.59.0 .kai/start.log 120 bin/stop.sh --graceful",
            "kai_run .kai/start.log 120 bin/start.sh",
        ],
        "the new release stopped as it was started, the old one started as it was installed"
    );
    assert!(undo.iter().any(|c| c.contains("http://10.1.0.11:8080/ready")) && !undo.iter().any(|c| c.contains("9090")), "{undo:?}");
    let record =
        commands(&plan.stage[0].steps).into_iter().find(|c| c.starts_with("kai_write .kai/checksums/10.60.0")).expect("the record");
    assert!(
        record.contains(r#"{"start":["bin/strat.sh"],"stop":["bin/stop.sh"],"health":{"http":{"url":"http://10.1.0.11:9090/ready"}}}"#),
        "{record}"
    );
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

// A release installed by an older kai has no record: it runs with today's settings, and
// the plan says so unless its recorded fingerprint shows they are what it ran with.
#[test]
fn a_release_without_a_record_is_put_back_with_todays_settings_and_the_plan_says_so() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let same = running(&config, "jmsadmin", "app02", "10.59.0");
    let unknown = host(Some("10.59.0"), &["10.59.0"]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.60.0"), &facts([("app01", unknown), ("app02", same)]), &options());

    assert!(commands(&plan.roll[0].undo).contains(&"kai_run .kai/start.log 120 bin/start.sh".to_owned()));
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert!(plan.notes[0].starts_with("10.59.0 on app01 has no record of the start, stop and health settings"), "{}", plan.notes[0]);
    assert!(plan.to_string().contains("  note: 10.59.0 on app01 has no record"), "{plan}");
}

// Issue 22: a deploy to a lower version than the hosts run is pointed out.
#[test]
fn a_downgrade_is_pointed_out_in_the_plan() {
    let config = config(&[("jmsadmin", JMSADMIN)]);
    let facts = facts([("app01", upgraded()), ("app02", host(Some("10.9.0"), &["10.9.0"]))]);
    let plan = plan(&config, "jmsadmin", &jmsadmin_release("10.10.0"), &facts, &options());
    let text = plan.to_string();
    assert!(text.contains("10.59.0 -> 10.10.0 (a downgrade)"), "{text}");
    assert!(text.contains("10.9.0 -> 10.10.0  "), "an upgrade by Maven order, not by text: {text}");
    assert!(plan.summary().contains("(a downgrade)"));
}

/// A `{secret:NAME}` reaches the properties written to the host and nothing a plan
/// shows; a new value is a change, rolled out like any other, and named as a secret.
#[test]
fn a_secret_reaches_only_the_host_and_a_new_value_is_rolled_out_as_a_change() {
    let app = JMSADMIN.replace(
        "[properties]\n",
        "[properties]\n\"db.url\" = \"jdbc:postgresql://svc:{secret:db.password}@db/x\"\n\"api.header\" = \"Bearer {secret:api.token}\"\n",
    );
    let with = |password: &str| {
        let mut config = config(&[("jmsadmin", &app)]);
        let secrets = [("db.password", password), ("api.token", "t0ken")];
        config.environments.get_mut("prod").unwrap().secrets =
            secrets.iter().map(|(k, v)| ((*k).to_owned(), kai_core::template::Secret::new(*v))).collect();
        config
    };
    let old = with("hunter2");
    let environment = &old.environments["prod"];
    let written = kai_core::plan::rendered_properties(environment, &old.apps["jmsadmin"], "app01", "10.60.0").unwrap();
    assert!(written.contains("db.url=jdbc:postgresql://svc:hunter2@db/x\n") && written.contains("api.header=Bearer t0ken\n"), "{written}");
    assert_eq!(old.apps["jmsadmin"].secret_names("prod").into_iter().collect::<Vec<_>>(), ["api.token", "db.password"]);

    let facts = facts([("app01", running(&old, "jmsadmin", "app01", "10.60.0")), ("app02", running(&old, "jmsadmin", "app02", "10.60.0"))]);
    let same = plan(&old, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());
    assert!(same.is_noop(), "the same secret: nothing to do");

    let new = with("correct horse");
    let plan = plan(&new, "jmsadmin", &jmsadmin_release("10.60.0"), &facts, &options());
    assert!(plan.targets.iter().all(|t| t.change && t.in_place("10.60.0")));
    assert_eq!(plan.targets[0].why, ["db.url: changed (secret, not shown)"]);
    let shown = format!("{plan}\n{}\n{:?}", serde_json::to_string(&plan).unwrap(), plan);
    for value in ["hunter2", "correct horse", "t0ken"] {
        assert!(!shown.contains(value), "{value} shown: {shown}");
    }
    assert!(shown.contains("Bearer {secret:api.token}"), "the plan says where a secret goes: {shown}");
}
