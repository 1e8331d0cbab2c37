//! The deploy pipeline end to end over SSH: every scenario of `scenarios/deploy.rs`
//! again, with the hosts reached through a real sshd (docs/deploy.md; issue: SSH).

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod support;

#[path = "scenarios/deploy.rs"]
mod deploy;

#[path = "scenarios/deploy_all.rs"]
mod deploy_all;

#[path = "scenarios/bad_day.rs"]
mod bad_day;

#[path = "scenarios/hostile.rs"]
mod hostile;

#[path = "scenarios/local_build.rs"]
mod local_build;

#[path = "scenarios/promote.rs"]
mod promote;

#[path = "scenarios/canary_command.rs"]
mod canary_command;

mod over_ssh_only {
    use std::time::{Duration, Instant};

    use crate::support::{wait_until, Artifact, World};

    /// The ssh master processes whose command line names `dir` (their socket folder).
    fn masters_in(dir: &std::path::Path) -> usize {
        let needle = dir.display().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.starts_with("ssh ") && c.contains(" -M ") && c.contains(&needle))
            .count()
    }

    /// The pids of the ssh masters whose command line names `dir`.
    fn master_pids(dir: &std::path::Path) -> Vec<u32> {
        let needle = dir.display().to_string();
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?).replace('\0', " ");
                (cmdline.starts_with("ssh ") && cmdline.contains(" -M ") && cmdline.contains(&needle)).then_some(pid)
            })
            .collect();
        pids.sort_unstable();
        pids
    }

    /// With `ssh_persist = "0s"`, kai killed outright cannot close its ssh masters; the
    /// next kai run stops them (and a normal run leaves none).
    #[test]
    fn without_ssh_persist_the_masters_of_a_killed_deploy_are_reaped_by_the_next_run() {
        crate::support::require_transport();
        let mut world = World::builder().active(3).standby(0).property("startup.delay.ms", "1500").publish("1.0.0").build();
        world.edit_file("environments/test.toml", "transport = \"ssh\"\n", "transport = \"ssh\"\nssh_persist = \"0s\"\n");
        world.deploy(["hello-1.0.0"]).assert_exit(0);
        world.publish("1.1.0", Artifact::Good);
        let ssh_dir = world.home_dir().join(".cache/kai/ssh");
        assert_eq!(masters_in(&ssh_dir), 0, "a run that ended left masters behind");

        let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
        wait_until("web1 starts 1.1.0", || world.host("web1").home().join("releases/1.1.0/run/pid").exists());
        deploy.signal("KILL");
        deploy.wait();
        assert!(masters_in(&ssh_dir) > 0, "the killed run's masters are there until someone stops them");

        world.kai(["status", "test"]);

        wait_until("the killed run's masters to exit", || masters_in(&ssh_dir) == 0);
        let left: Vec<_> = std::fs::read_dir(&ssh_dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "socket folders left: {left:?}");
    }

    /// By default a run's masters stay for `ssh_persist` after it: the next run (even
    /// after a kai killed outright) uses them rather than logging in again, and once
    /// idle that long they end on their own; the next run clears their folders.
    #[test]
    fn kept_masters_serve_the_next_runs_and_end_once_idle_for_ssh_persist() {
        crate::support::require_transport();
        let mut world = World::builder().active(3).standby(0).property("startup.delay.ms", "1500").publish("1.0.0").build();
        world.edit_file("environments/test.toml", "transport = \"ssh\"\n", "transport = \"ssh\"\nssh_persist = \"3s\"\n");
        world.deploy(["hello-1.0.0"]).assert_exit(0);
        let ssh_dir = world.home_dir().join(".cache/kai/ssh");
        let kept = master_pids(&ssh_dir);
        assert_eq!(kept.len(), 3, "one master per host stays after the run: {kept:?}");

        world.publish("1.1.0", Artifact::Good);
        let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
        wait_until("web1 starts 1.1.0", || world.host("web1").home().join("releases/1.1.0/run/pid").exists());
        deploy.signal("KILL");
        deploy.wait();
        world.kai(["status", "test"]);
        assert_eq!(master_pids(&ssh_dir), kept, "the same masters served the killed deploy and the status after it");

        wait_until("the kept masters to end, idle", || master_pids(&ssh_dir).is_empty());
        // Their folders are reaped once old enough that no login can be under way there.
        for dir in std::fs::read_dir(ssh_dir.join("shared")).unwrap().flatten().filter(|e| e.path().is_dir()) {
            let aged = std::process::Command::new("touch").args(["-d", "-2 minutes"]).arg(dir.path()).status().unwrap();
            assert!(aged.success());
        }
        world.kai(["status", "test"]);
        let fresh = master_pids(&ssh_dir);
        assert_eq!(fresh.len(), 3, "a new login per host: {fresh:?}");
        assert!(fresh.iter().all(|pid| !kept.contains(pid)), "{fresh:?} {kept:?}");
        let shared = std::fs::read_dir(ssh_dir.join("shared")).unwrap().flatten().filter(|e| e.path().is_dir()).count();
        assert_eq!(shared, 3, "only the live masters' folders are left");
    }

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
