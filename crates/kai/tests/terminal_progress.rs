//! Progress as a person sees it (issue 5): on a terminal one live line per app
//! (phase, hosts done / total, elapsed), redrawn in place, then the summary; `-v` gives
//! the per-host step lines instead; without a terminal the plain timestamped lines.
//! `NO_COLOR` (or `--no-color`) leaves no color code at all.

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

use support::{World, ENV};

/// An escape sequence that sets a color (SGR), as kai would write one.
fn has_color(text: &str) -> bool {
    text.contains("\x1b[32m") || text.contains("\x1b[31m") || text.contains("\x1b[33m") || text.contains("\x1b[0m")
}

#[test]
fn on_a_terminal_each_app_has_one_live_line_then_the_summary() {
    let world = World::builder().publish("1.0.0").build();

    let run = world.kai_in_terminal(&["deploy", ENV, "hello-1.0.0"], "", &[]);

    run.assert_exit(0);
    let shown = &run.stdout;
    assert!(shown.contains("\r\x1b[K  hello  "), "no live line: {run:?}");
    assert!(shown.contains("\x1b[1A"), "the live line is never redrawn in place: {run:?}");
    assert!(shown.contains("\x1b[32mdeployed\x1b[0m  3/3 hosts"), "the final live line: {run:?}");
    assert!(!shown.contains(" web1 start ok"), "per-host lines without -v: {run:?}");
    let summary = shown.rfind("\ntest:\n").expect("the summary");
    assert!(shown[summary..].contains("- -> 1.0.0") && shown[summary..].contains("deployed"), "{run:?}");
    assert!(shown[summary..].contains("\x1b[32mdeployed\x1b[0m"), "the result in color: {run:?}");
}

#[test]
fn no_color_leaves_no_color_codes() {
    let world = World::builder().publish("1.0.0").publish("1.1.0").build();

    let run = world.kai_in_terminal(&["deploy", ENV, "hello-1.0.0"], "", &[("NO_COLOR", "1")]);
    run.assert_exit(0);
    assert!(run.stdout.contains("\x1b[K"), "still live: {run:?}");
    assert!(!has_color(&run.stdout), "{run:?}");

    let flag = world.kai_in_terminal(&["--color", "never", "deploy", ENV, "hello-1.1.0"], "", &[]);
    flag.assert_exit(0);
    assert!(!has_color(&flag.stdout), "{flag:?}");
    let status = world.kai_in_terminal(&["status", ENV, "hello"], "", &[]);
    assert!(status.stdout.contains("\x1b[32mok\x1b[0m"), "health in color on a terminal: {status:?}");
    let old = world.kai_in_terminal(&["--no-color", "status", ENV, "hello"], "", &[]);
    assert!(!has_color(&old.stdout), "--no-color still works: {old:?}");
}

#[test]
fn color_always_colors_a_pipe_and_auto_does_not() {
    let world = World::builder().publish("1.0.0").build();

    let piped = world.deploy(["hello-1.0.0"]);
    piped.assert_exit(0);
    assert!(!has_color(&piped.output()), "{piped:?}");

    let always = world.kai(["--color", "always", "status", ENV, "hello"]);
    assert!(always.stdout.contains("\x1b[32mok\x1b[0m"), "{always:?}");
    let still = world.start_kai(["--color", "always", "status", ENV, "hello"], &[("NO_COLOR", "1")]).wait();
    assert!(still.stdout.contains("\x1b[32m"), "an explicit --color always wins over NO_COLOR: {still:?}");
    world.kai(["--color", "sometimes", "status"]).assert_exit(2).assert_says(&["sometimes", "auto", "always", "never"]);
}

#[test]
fn verbose_on_a_terminal_shows_every_step_on_every_host() {
    let world = World::builder().publish("1.0.0").build();

    let run = world.kai_in_terminal(&["deploy", "-v", ENV, "hello-1.0.0"], "", &[]);

    run.assert_exit(0).assert_says(&[" test hello web1 start ok", " test hello web2 health ok", " test hello web3 switch ok"]);
    assert!(!run.stdout.contains("\x1b[K") && !run.stdout.contains("\x1b[1A"), "no live lines with -v: {run:?}");
}

#[test]
fn without_a_terminal_a_deploy_writes_a_short_log_and_v_every_step() {
    let world = World::builder().active(3).standby(0).publish("1.0.0").publish("1.1.0").build();

    let run = world.deploy(["hello-1.0.0"]);

    run.assert_exit(0);
    let output = run.output();
    assert!(output.lines().count() <= 14, "one app on 3 hosts, at most 14 lines: {run:?}");
    let stamped = |text: &str| run.stderr.lines().any(|l| l.starts_with("20") && l.ends_with(text));
    assert!(
        stamped(" test hello staged on web1, web2, web3") || run.stderr.contains(" test hello staged on web1, web2, web3 ("),
        "{run:?}"
    );
    for host in ["web1", "web2", "web3"] {
        assert!(run.stderr.lines().any(|l| l.contains(&format!(" test hello {host} switched, healthy after "))), "{host}: {run:?}");
    }
    assert!(!run.stderr.contains(" start ok"), "no per-step lines without -v: {run:?}");
    assert!(!run.output().contains('\x1b'), "{run:?}");

    let verbose = world.kai(["deploy", "-v", ENV, "hello-1.1.0"]);
    verbose.assert_exit(0);
    assert!(verbose.stderr.lines().any(|l| l.ends_with(" test hello web1 start ok") && l.starts_with("20")), "{verbose:?}");
}

#[test]
fn the_live_line_names_the_server_being_switched_and_which_of_how_many() {
    let world = World::builder().active(3).standby(0).publish("1.0.0").build();

    let run = world.kai_in_terminal(&["deploy", ENV, "hello-1.0.0"], "", &[]);

    run.assert_exit(0);
    for wave in ["web1 (1 of 3)", "web2 (2 of 3)", "web3 (3 of 3)"] {
        assert!(run.stdout.contains(wave), "{wave}: {run:?}");
    }
    assert!(!run.stdout.contains("roll       0/1 host"), "{run:?}");
}
