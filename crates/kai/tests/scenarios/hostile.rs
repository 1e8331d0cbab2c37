//! Hostile artifacts, hostile repositories and races (run on local hosts and again over
//! a real sshd): nothing escapes a release, nothing hangs, nothing is lost.

use std::os::unix::fs::symlink;
use std::path::Path;

use crate::support::{Artifact, World};

/// A chain of links each of which looks harmless as text (`l2 -> l1/..`), and `config`
/// through it to a folder outside every release: kai would write the properties there.
#[test]
fn a_chain_of_links_that_leaves_the_release_is_refused_and_nothing_is_written_outside() {
    let mut world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let outside = world.base().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let through_root = outside.display().to_string().trim_start_matches('/').to_owned();
    world.publish_with("1.1.0", Artifact::Good, |release: &Path| {
        symlink(".", release.join("l1")).unwrap();
        for i in 2..=20 {
            symlink(format!("l{}/..", i - 1), release.join(format!("l{i}"))).unwrap();
        }
        symlink(format!("l20/{through_root}"), release.join("config")).unwrap();
    });

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["unpack failed", "outside", "nothing was switched"]);

    assert!(!outside.join("app.properties").exists(), "kai wrote through the links, outside the release");
    assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
    assert_eq!(world.host("web1").releases(), ["1.0.0"], "no temporary folder is left");
}

/// A link whose name holds a tab (a listing split on tabs reads it wrong).
#[test]
fn a_link_with_a_tab_in_its_name_is_judged_by_where_it_leads() {
    let mut world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish_with("1.1.0", Artifact::Good, |release: &Path| symlink("/etc", release.join("a\tb")).unwrap());

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["unpack failed", "resolves to /etc, outside"]);

    assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
}

/// Links that stay inside (to a sibling, up and down again) are fine.
#[test]
fn links_that_stay_inside_the_release_are_kept() {
    let mut world = World::builder().active(1).standby(0).build();
    world.publish_with("1.0.0", Artifact::Good, |release: &Path| {
        std::fs::create_dir_all(release.join("lib")).unwrap();
        symlink("../VERSION", release.join("lib/VERSION")).unwrap();
        symlink("lib", release.join("libs")).unwrap();
    });

    world.deploy(["hello-1.0.0"]).assert_exit(0);

    let link = world.host("web1").home().join("releases/1.0.0/libs/VERSION");
    assert_eq!(std::fs::read_to_string(link).unwrap().trim(), "1.0.0");
}
