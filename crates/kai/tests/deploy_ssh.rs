//! The deploy pipeline end to end over SSH: every scenario of `scenarios/deploy.rs`
//! again, with the hosts reached through a real sshd (DESIGN §4, §6; issue: SSH).

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod support;

#[path = "scenarios/deploy.rs"]
mod deploy;

#[path = "scenarios/bad_day.rs"]
mod bad_day;

#[path = "scenarios/hostile.rs"]
mod hostile;

mod over_ssh_only {
    use std::time::{Duration, Instant};

    use crate::support::World;

    /// sshd dies while the first server is starting the new release: kai cannot reach
    /// the next server, the rollout stops, every host still serves, and the lock stays
    /// (a rerun must resume on purpose).
    #[test]
    fn losing_the_connection_mid_rollout_leaves_serving_hosts_serving_and_the_lock_held() {
        crate::support::require_transport();
        let world = World::builder()
            .active(3)
            .standby(0)
            .property("startup.delay.ms", "1500")
            .publish("1.0.0")
            .publish("1.1.0")
            .build()
            .deployed("hello-1.0.0");
        let run = std::thread::scope(|scope| {
            let deploy = scope.spawn(|| world.deploy(["hello-1.1.0"]));
            let deadline = Instant::now() + Duration::from_secs(30);
            // web1 runs 1.1.0's start script and waits for it to be ready: cut then.
            while !world.host("web1").home().join("releases/1.1.0/run/pid").exists() {
                assert!(Instant::now() < deadline, "web1 was never started on 1.1.0");
                std::thread::sleep(Duration::from_millis(20));
            }
            world.cut_ssh();
            deploy.join().unwrap()
        });
        run.assert_exit(1).assert_says(&["connection lost"]);
        std::thread::sleep(Duration::from_millis(1600));
        for host in world.hosts() {
            assert!(host.version().is_some(), "{host:?} stopped serving");
            assert!(host.is_locked(), "the lock of {host:?} was released");
        }
        assert_eq!(world.host("web3").version().as_deref(), Some("1.0.0"), "web3 was never touched");
    }
}
