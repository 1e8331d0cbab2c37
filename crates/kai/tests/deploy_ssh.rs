//! The deploy pipeline end to end over SSH: every scenario of `scenarios/deploy.rs`
//! again, with the hosts reached through a real sshd (DESIGN §4, §6; issue: SSH).

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod support;

#[path = "scenarios/deploy.rs"]
mod deploy;

#[test]
#[ignore = "timing probe"]
fn timing_probe() {
    let t = std::time::Instant::now();
    let world = support::World::builder().publish("1.0.0").publish("1.1.0").build();
    eprintln!("build {:?}", t.elapsed());
    let r = world.deploy(["hello-1.0.0"]);
    eprintln!("deploy1 {:?}\n{}", r.took, r.output());
    let r = world.deploy(["hello-1.1.0"]);
    eprintln!("deploy2 {:?}", r.took);
    let t = std::time::Instant::now();
    drop(world);
    eprintln!("drop {:?}", t.elapsed());
}
