const OVER_SSH: bool = true;
mod support;
use support::*;
#[test]
fn show() {
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Broken);
    world.deploy(["hello-1.1.0"]);
    world
        .host("web2")
        .hold_lock(r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#);
    world.make_unreachable("web3");
    for args in [
        vec!["status"],
        vec!["status", "test"],
        vec!["status", "test", "hello"],
        vec!["history", "test"],
        vec!["ps", "test"],
        vec!["lock", "test", "hello"],
        vec!["unlock", "test", "hello", "--yes"],
        vec!["history", "test"],
    ] {
        let r = world.kai(&args);
        eprintln!("$ kai {} (exit {}, {:?})\n{}{}", args.join(" "), r.code, r.took, r.stdout, r.stderr);
    }
}
