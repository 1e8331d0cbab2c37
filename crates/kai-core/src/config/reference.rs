//! The configuration reference (`docs/configuration.md`) holds every key the model
//! accepts: the keys come from the model itself (what serde says it expects when it
//! meets an unknown one), so a key added to the code and not to the reference fails here.

use super::load::accepted_keys;

const REFERENCE: &str = include_str!("../../../../docs/configuration.md");

/// Every key of a table, probed with an unknown key placed in it (`prefix` opens the
/// table and gives what it requires), each shown in the reference as `path.key`.
fn assert_documented(file: &str, prefix: &str, path: &str, leaves_only: &[&str]) -> Vec<String> {
    let keys = accepted_keys(file, &format!("{prefix}\nzzz_not_a_key = 1\n"));
    assert!(!keys.is_empty(), "{file} {prefix:?}: the model named no keys");
    let mut missing = Vec::new();
    for key in &keys {
        if leaves_only.contains(&key.as_str()) {
            continue;
        }
        let documented = format!("`{path}{key}");
        if !REFERENCE.contains(&documented) {
            missing.push(format!("{file}: {path}{key}"));
        }
    }
    missing
}

#[test]
fn every_key_of_every_file_is_in_the_configuration_reference() {
    let mut missing = Vec::new();
    // kai.toml
    missing.extend(assert_documented("kai", "", "", &["repository", "defaults", "notify"]));
    missing.extend(assert_documented("kai", "[repository]\nurl = \"x\"", "repository.", &[]));
    missing.extend(assert_documented("kai", "[repository]\nurl = \"x\"\n[defaults]", "defaults.", &[]));
    missing.extend(assert_documented("kai", "[repository]\nurl = \"x\"\n[notify]", "notify.", &[]));
    missing.extend(assert_documented("kai", "[repository]\nurl = \"x\"\n[notify.email]", "notify.email.", &[]));
    missing.extend(assert_documented("kai", "[repository]\nurl = \"x\"\n[notify.webhook]", "notify.webhook.", &[]));
    // environments/<env>.toml
    missing.extend(assert_documented("environment", "", "", &["rollout", "hosts", "balancer", "canary"]));
    missing.extend(assert_documented("environment", "[rollout]", "rollout.", &[]));
    missing.extend(assert_documented("environment", "[canary]", "canary.", &[]));
    missing.extend(assert_documented("environment", "[hosts]\nweb1 = { address = \"a\", zzz = 1 }\n[x]", "hosts.<name>.", &[]));
    missing.extend(assert_documented("environment", "[hosts]\n[balancer]", "balancer.", &[]));
    // apps/<app>.toml
    let app = "user = \"u\"\nstart = \"s\"\nstop = \"t\"";
    missing.extend(assert_documented("app", app, "", &["health", "rollout", "env", "properties", "canary"]));
    missing.extend(assert_documented("app", &format!("{app}\n[canary]"), "canary.", &[]));
    missing.extend(assert_documented("app", &format!("{app}\n[health]"), "health.", &[]));
    missing.extend(assert_documented("app", &format!("{app}\n[rollout]"), "rollout.", &[]));
    missing.extend(assert_documented("app", &format!("{app}\n[env.prod]\nservers = []"), "env.<env>.", &["properties"]));
    for documented in ["`properties.<key>`", "`env.<env>.properties.<key>`", "`hosts.<name>`"] {
        if !REFERENCE.contains(documented) {
            missing.push(documented.to_owned());
        }
    }
    assert!(missing.is_empty(), "keys kai reads that docs/configuration.md does not describe:\n  {}", missing.join("\n  "));
}
