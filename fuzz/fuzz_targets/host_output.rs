//! What hosts print, read by kai: the probe, one read of many apps, `kai ps`, a script's framed output, a
//! checksum file, a reported version; any bytes are read or refused, never a panic, and
//! what is read keeps its promises.
#![no_main]

use kai_core::checksum::Algorithm;
use kai_core::outcome::Output;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let facts = kai_core::facts::parse_probe(&text);
    assert!(facts.releases.iter().all(|r| !r.starts_with('.')), "{facts:?}");
    let _ = kai_core::facts::parse_lock_owner(&text);
    let entries = estate_entries();
    let read = kai_core::estate::parse(&text, "T", &entries);
    assert_eq!(read.len(), entries.len());
    for (reading, entry) in read.iter().zip(&entries) {
        assert!(reading.healthy.is_none() || entry.health.is_some(), "{reading:?}");
        assert!(reading.history.is_none() || entry.history.is_some(), "{reading:?}");
        let here = matches!(reading.home, kai_core::estate::Home::Here(_));
        assert!(here || (reading.healthy.is_none() && reading.history.is_none()), "{reading:?}");
    }
    let processes = kai_core::ps::parse_ps("web1", &text);
    let _ = kai_core::ps::report(processes, kai_core::ps::SortKey::Rss, Some(3)).render();
    let (stdout, stderr) = text.split_once('\u{1}').unwrap_or((&text, ""));
    let whole = Output { code: Some(0), stdout: stdout.to_owned(), stderr: stderr.to_owned() };
    let _ = kai_core::shell::session::parse_outputs("T", &whole);
    let _ = kai_core::shell::session::partial_outputs("T", &whole);
    for algorithm in [Algorithm::Sha256, Algorithm::Sha1, Algorithm::Md5] {
        if let Ok(sum) = kai_core::checksum::parse_checksum_file(algorithm, &text) {
            assert_eq!(sum.hex.len(), algorithm.hex_len());
            assert!(sum.hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{sum:?}");
        }
    }
    if let Some(version) = kai_core::status::reported_version(&text) {
        assert!(kai_core::ident::is_valid(&version));
    }
    assert!(!kai_core::table::printable(&text).chars().any(char::is_control));
});

/// Three apps of one host: one plain, one read through sudo with its history, one
/// with a command health check.
fn estate_entries() -> Vec<kai_core::estate::Entry> {
    use kai_core::shell::session::Access;
    let entry = |app: &str, sudo: Option<&str>| kai_core::estate::Entry {
        access: Access { home: Some(format!("/srv/{app}")), sudo: sudo.map(str::to_owned) },
        properties_file: Some("config/app.properties".to_owned()),
        history: None,
        health: None,
    };
    let mut told = entry("b", Some("bee"));
    told.history = Some(1024);
    let mut checked = entry("c", None);
    checked.health = Some((vec!["bin/status.sh".to_owned()], std::time::Duration::from_secs(2)));
    vec![entry("a", None), told, checked]
}
