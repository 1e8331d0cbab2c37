//! What hosts print, read by kai: the probe, `kai ps`, a script's framed output, a
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
