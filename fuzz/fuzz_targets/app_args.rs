//! Arguments and command lines: `<app>-<version>` splits only into a configured app and
//! a valid version; a quoted word splits back into itself.
#![no_main]

use kai_core::args::{parse_app_arg, VersionWanted};
use kai_core::shell::command::{quote, split_command_line};
use libfuzzer_sys::fuzz_target;

const APPS: [&str; 4] = ["hello", "ssod-grensesnitt", "a-b", "a-b-1"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(arg) = parse_app_arg(&text, APPS.iter().copied()) {
        assert!(APPS.contains(&arg.app.as_str()), "{arg:?}");
        if let VersionWanted::Exact(version) = &arg.version {
            assert!(kai_core::ident::is_valid(version), "{version:?}");
        }
    }
    assert_eq!(split_command_line(&quote(&text)), Ok(vec![text.to_string()]), "{text:?}");
    if let Ok(words) = split_command_line(&text) {
        let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
        assert_eq!(split_command_line(&line.join(" ")), Ok(words));
    }
});
