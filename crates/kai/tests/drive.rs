//! The deploy machine's branches, driven through the real executor, balancer and
//! waits by kai's library ([`kai::testing::deploy`]) over a [`FakeTransport`]: scripted
//! outcomes, the commands each host was sent, no process and no socket. (kai-core's
//! `tests/deploy_machine.rs` drives the machine alone, event by event; this keeps the
//! wiring honest.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kai_core::checksum::{Algorithm, Checksum};
use kai_core::config::{load, Config, ConfigSources, SourceFile};
use kai_core::deploy::{AppResult, Report, What};
use kai_core::plan::{Release, Source};

use kai::testing::{Answer, FakeTransport};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn config() -> Config {
    let file = |path: &str, text: &str| SourceFile { path: PathBuf::from(path), text: text.to_owned() };
    let sources = ConfigSources {
        root: PathBuf::from("/cfg"),
        kai_toml: file("kai.toml", "[repository]\nurl = \"/repo\"\ngroup = \"org.example\"\n"),
        environments: vec![file(
            "environments/test.toml",
            "transport = \"local\"\n[hosts]\nweb1 = { address = \"10.0.0.1\", root = \"/h/web1\" }\n\
             web2 = { address = \"10.0.0.2\", root = \"/h/web2\" }\nweb3 = { address = \"10.0.0.3\", root = \"/h/web3\" }\n",
        )],
        apps: vec![file(
            "apps/hello.toml",
            "packaging = \"tar.gz\"\nuser = \"hello\"\nstart = \"bin/start.sh\"\nstop = \"bin/stop.sh\"\n\
             [health]\ncommand = \"bin/status.sh\"\ntimeout = \"1s\"\nstable = \"0s\"\n\
             [env.test]\nservers = [\"web1\", \"web2\"]\nstandby = [\"web3\"]\n",
        )],
    };
    load(&sources).expect("a valid configuration")
}

/// A host running 1.0.0, healthy.
const AT_1_0_0: &str = "current\treleases/1.0.0\nrelease\t1.0.0\t1\nchecksum\t1.0.0\tsha256:0\nfree_kb\t99999999\n";

fn fleet() -> FakeTransport {
    FakeTransport::new().probe("web1", AT_1_0_0).probe("web2", AT_1_0_0).probe("web3", &format!("disabled\n{AT_1_0_0}"))
}

fn release(version: &str) -> Release {
    Release {
        version: version.into(),
        file_name: format!("hello-{version}.tar.gz"),
        checksum: Checksum { algorithm: Algorithm::Sha256, hex: HEX.into() },
        size: Some(1000),
        source: Source::Push { local: "/cache/hello.tar.gz".into() },
        local: None,
        promoted_from: None,
    }
}

/// Deploys hello 1.1.0 through `fake`; `stop` is read before each round.
async fn deploy(fake: &FakeTransport, stop: &(dyn Fn() -> bool + Sync)) -> Report {
    let config = config();
    kai::testing::deploy(fake, &config, "test", "hello", What::Deploy(Box::new(release("1.1.0"))), stop).await
}

fn never() -> bool {
    false
}

/// The kinds of command `host` was sent, by their first word (`kai_lock`, `mv`, …).
fn words(fake: &FakeTransport, host: &str) -> Vec<String> {
    fake.sent_to(host).iter().map(|c| c.split_whitespace().next().unwrap_or_default().to_owned()).collect()
}

fn ran(fake: &FakeTransport, host: &str, text: &str) -> bool {
    fake.sent_to(host).iter().any(|c| c.contains(text))
}

fn unlocked(fake: &FakeTransport, host: &str) -> bool {
    fake.sent_to(host).last().is_some_and(|c| c == "rm -rf .kai/lock")
}

#[tokio::test]
async fn a_deploy_locks_the_first_host_alone_stages_rolls_one_by_one_then_the_standby_and_records() {
    let fake = fleet();
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::Deployed, "{report:?}");
    let sent = fake.sent();
    assert_eq!(
        sent[0..2].iter().map(|(h, c)| (h.as_str(), c.split(' ').next().unwrap_or(""))).collect::<Vec<_>>(),
        [("web1", "kai_lock"), ("web1", "kai_probe")]
    );
    let first_switch =
        |host: &str| sent.iter().position(|(h, c)| h == host && c.starts_with("mv -T .current.tmp current")).expect("switched");
    assert!(first_switch("web1") < first_switch("web2") && first_switch("web2") < first_switch("web3"), "{sent:?}");
    for host in ["web1", "web2", "web3"] {
        let words = words(&fake, host);
        let started = words.iter().position(|w| w == "kai_started").expect("a started record");
        let switch = fake.sent_to(host).iter().position(|c| c.starts_with("mv -T .current.tmp")).expect("a switch");
        assert!(started < switch, "started before the switch on {host}: {words:?}");
        assert!(ran(&fake, host, r#""result":"ok""#), "{host} records its result");
        assert!(unlocked(&fake, host), "{host}: {words:?}");
    }
}

#[tokio::test]
async fn a_lock_held_elsewhere_releases_the_locks_taken_and_reports_its_holder() {
    let owner = r#"{"user":"bob","machine":"ws2","pid":7,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;
    let fake = fleet().on("web2", "kai_lock", Answer::Exit { code: 3, stdout: format!("{owner}\n"), stderr: String::new() });
    let report = deploy(&fake, &never).await;
    assert!(matches!(&report.result, AppResult::Locked(o) if o.user == "bob"), "{report:?}");
    assert!(unlocked(&fake, "web1") && unlocked(&fake, "web3"), "the locks taken are released");
    assert!(!ran(&fake, "web2", "rm -rf .kai/lock"), "bob's lock is left alone");
    assert!(!fake.sent().iter().any(|(_, c)| c.starts_with("kai_mkdir releases")), "nothing staged");
}

// ---- --lock-wait: each try is a deploy from its start ------------------------------------

const BOB: &str = r#"{"user":"bob","machine":"ws2","pid":7,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

fn held_by_bob() -> Answer {
    Answer::Exit { code: 3, stdout: format!("{BOB}\n"), stderr: String::new() }
}

#[tokio::test]
async fn a_waiting_deploy_lets_go_of_the_locks_it_took_before_it_tries_again() {
    // Held on web2 at the first try only: the second try goes through.
    let fake = fleet().on_nth("web2", "kai_lock", 1, held_by_bob());
    let config = config();
    let what = What::Deploy(Box::new(release("1.1.0")));
    let (report, waited) = kai::testing::deploy_waiting(&fake, &config, "test", "hello", what, Duration::from_secs(20)).await;

    assert_eq!(report.result, AppResult::Deployed, "{report:?}");
    assert_eq!(waited.end, kai_core::lock_wait::End::Tried);
    assert!(waited.waited >= Duration::from_secs(2), "{waited:?}");
    assert_eq!(waited.holder.map(|h| h.user), Some("bob".to_owned()));
    for host in ["web1", "web3"] {
        let sent = fake.sent_to(host);
        let locks: Vec<usize> = sent.iter().enumerate().filter(|(_, c)| c.starts_with("kai_lock")).map(|(i, _)| i).collect();
        assert_eq!(locks.len(), 2, "{host} locked once per try: {sent:?}");
        let released = sent.iter().position(|c| c == "rm -rf .kai/lock").expect("the first try's lock released");
        assert!(locks[0] < released && released < locks[1], "{host}: released between the tries: {sent:?}");
    }
    let web2 = fake.sent_to("web2");
    assert_eq!(web2.iter().filter(|c| c.starts_with("kai_lock")).count(), 2, "{web2:?}");
    assert!(web2.iter().position(|c| c == "rm -rf .kai/lock").is_some_and(|i| i > 1), "bob's lock is never removed: {web2:?}");
}

#[tokio::test]
async fn a_try_that_could_not_let_go_of_its_lock_is_not_tried_again() {
    let fake = fleet().on("web2", "kai_lock", held_by_bob()).on("web1", "rm -rf .kai/lock", Answer::fail(1, "rm: Permission denied"));
    let config = config();
    let what = What::Deploy(Box::new(release("1.1.0")));
    let (report, waited) = kai::testing::deploy_waiting(&fake, &config, "test", "hello", what, Duration::from_secs(20)).await;

    assert!(matches!(&report.result, AppResult::Locked(o) if o.user == "bob"), "{report:?}");
    assert!(report.notes.iter().any(|n| n.contains("web1: unlock failed")), "{report:?}");
    assert!(waited.end == kai_core::lock_wait::End::Tried && waited.waited < Duration::from_secs(1), "{waited:?}");
    assert_eq!(fake.sent_to("web1").iter().filter(|c| c.starts_with("kai_lock")).count(), 1, "tried again over its own lock");
}

#[tokio::test]
async fn a_lock_whose_owner_could_not_be_written_is_not_taken_and_nothing_goes_on() {
    let fake = fleet().on("web1", "kai_lock", Answer::fail(4, "cat: write error: No space left on device"));
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::Failed, "{report:?}");
    assert!(report.failure.is_some_and(|f| f.output.raw().contains("No space left")));
    assert!(!ran(&fake, "web1", "rm -rf .kai/lock"), "a lock not taken is not removed: {:?}", fake.sent_to("web1"));
    assert!(fake.sent_to("web2").is_empty(), "the other hosts were not even locked");
}

#[tokio::test]
async fn a_probe_that_fails_after_the_lock_releases_the_lock() {
    let fake = fleet().on("web2", "kai_probe", Answer::fail(1, "find: permission denied"));
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::Failed, "{report:?}");
    assert!(unlocked(&fake, "web1") && unlocked(&fake, "web2") && unlocked(&fake, "web3"));
}

#[tokio::test]
async fn a_stage_that_fails_on_one_host_cleans_up_everywhere_and_switches_nothing() {
    let fake = fleet().on("web2", "kai_receive", Answer::fail(1, "sha256sum: WARNING: 1 computed checksum did NOT match"));
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::Failed);
    assert_eq!(report.failure.as_ref().map(|f| (f.host.as_str(), f.step)), Some(("web2", kai_core::step::StepKind::Fetch)));
    for host in ["web1", "web2", "web3"] {
        assert!(ran(&fake, host, "rm -rf releases/.tmp-1.1.0-r1"), "{host} cleaned up");
        assert!(!ran(&fake, host, "kai_started"), "{host} was never switched");
        assert!(unlocked(&fake, host));
    }
    assert!(ran(&fake, "web2", r#""result":"failed""#), "the failure is in web2's history");
    assert!(ran(&fake, "web1", r#""result":"not-switched""#), "and web1 says it was not switched");
}

#[tokio::test]
async fn a_stop_past_its_deadline_puts_that_server_and_the_ones_before_it_back() {
    let fake = fleet().on_nth("web2", "kai_run .kai/start.log 120 bin/stop.sh", 1, Answer::Timeout);
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::RolledBack, "{report:?}");
    let failure = report.failure.expect("the failure");
    assert_eq!((failure.host.as_str(), failure.step), ("web2", kai_core::step::StepKind::Stop));
    assert!(failure.reason.to_string().contains("did not finish"), "{}", failure.reason);
    assert!(ran(&fake, "web2", "ln -sfn releases/1.0.0") && ran(&fake, "web1", "ln -sfn releases/1.0.0"), "both back on 1.0.0");
    assert!(!ran(&fake, "web3", "kai_started"), "the standby was not touched");
    assert!(ran(&fake, "web1", r#""result":"rolled-back""#));
    assert!(unlocked(&fake, "web1") && unlocked(&fake, "web2") && unlocked(&fake, "web3"));
}

#[tokio::test]
async fn a_stop_request_during_a_switch_finishes_that_server_and_touches_no_other() {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&stop);
    let fake = fleet().watch(move |host, command| {
        if host == "web1" && command.starts_with("mv -T .current.tmp current") {
            seen.store(true, Ordering::SeqCst);
        }
    });
    let report = deploy(&fake, &|| stop.load(Ordering::SeqCst)).await;
    assert_eq!(report.result, AppResult::Interrupted, "{report:?}");
    assert!(ran(&fake, "web1", "kai_run .kai/start.log 120 bin/start.sh"), "web1 finished its switch");
    assert!(!ran(&fake, "web2", "kai_started") && !ran(&fake, "web3", "kai_started"), "no other server was touched");
    assert!(ran(&fake, "web1", r#""result":"interrupted""#), "web1 switched, in a run that did not finish");
    assert!(!ran(&fake, "web2", r#""result""#), "web2 gets no record: {:?}", fake.sent_to("web2"));
    assert!(unlocked(&fake, "web1") && unlocked(&fake, "web2") && unlocked(&fake, "web3"));
    assert!(report.message.unwrap_or_default().contains("web1 switched to 1.1.0; web2, web3 not switched"));
}

#[tokio::test]
async fn a_rollback_that_fails_too_keeps_every_lock() {
    let fake = fleet().on_nth("web2", "kai_run .kai/start.log 120 bin/start.sh", 1, Answer::fail(1, "port in use")).on_nth(
        "web2",
        "ln -sfn releases/1.0.0",
        1,
        Answer::Lost,
    );
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::RollbackFailed, "{report:?}");
    for host in ["web1", "web2", "web3"] {
        assert!(!ran(&fake, host, "rm -rf .kai/lock"), "{host} was unlocked");
    }
    assert!(report.message.unwrap_or_default().contains("kai unlock test hello"));
}

#[tokio::test]
async fn a_standby_that_cannot_be_switched_fails_the_deploy_with_the_actives_switched() {
    let fake = fleet().on("web3", "touch disabled", Answer::fail(1, "touch: Permission denied"));
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::Failed);
    assert!(report.message.unwrap_or_default().contains("standby"));
    assert!(ran(&fake, "web3", r#""result":"failed""#) && ran(&fake, "web1", r#""result":"ok""#));
    assert!(unlocked(&fake, "web3"));
}

#[tokio::test]
async fn a_record_that_fails_still_unlocks_that_host() {
    let fake = fleet().on("web2", "kai_append .kai/history.jsonl", Answer::fail(1, "disk full"));
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::Deployed);
    assert!(report.notes.iter().any(|n| n.contains("web2: record failed")), "{:?}", report.notes);
    assert!(unlocked(&fake, "web2"), "{:?}", fake.sent_to("web2"));
}

#[tokio::test]
async fn hosts_already_at_the_version_and_healthy_are_only_locked_read_and_unlocked() {
    let at = "current\treleases/1.1.0\nrelease\t1.1.0\t1\nchecksum\t1.1.0\tsha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nfree_kb\t9999999\n";
    let fake = FakeTransport::new().probe("web1", at).probe("web2", at).probe("web3", &format!("disabled\n{at}"));
    let report = deploy(&fake, &never).await;
    assert_eq!(report.result, AppResult::UpToDate, "{report:?}");
    for host in ["web1", "web2", "web3"] {
        let words = words(&fake, host);
        assert!(words.iter().all(|w| ["kai_lock", "kai_probe", "cd", "rm"].contains(&w.as_str())), "{host}: {words:?}");
    }
}
