//! The configuration loader: any three files (kai.toml, one environment, one app) are
//! loaded or refused with errors that name a file; never a panic.
#![no_main]

use std::path::PathBuf;

use kai_core::config::{load, ConfigSources, SourceFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let file = |path: &str, text: Option<&str>| SourceFile { path: PathBuf::from(path), text: text.unwrap_or("").to_owned() };
    let sources = ConfigSources {
        root: PathBuf::from("/cfg"),
        kai_toml: file("kai.toml", parts.next()),
        environments: vec![file("environments/prod.toml", parts.next())],
        apps: vec![file("apps/hello.toml", parts.next())],
    };
    match load(&sources) {
        Ok(config) => {
            for app in config.apps.values() {
                for (env, placement) in &app.envs {
                    let environment = &config.environments[env];
                    assert!(placement.servers.iter().chain(&placement.standby).all(|h| environment.hosts.contains_key(h)));
                }
            }
        }
        Err(errors) => assert!(!errors.0.is_empty()),
    }
});
