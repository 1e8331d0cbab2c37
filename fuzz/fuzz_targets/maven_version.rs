//! Maven version ordering: antisymmetric, equal exactly when `cmp` says so, and
//! transitive for valid version names that begin with a digit (Maven's own order is not, for some
//! that begin with a word: `x < 0-beta < 0` yet `x > 0`); sorting never panics;
//! parsing keeps the text.
#![no_main]

use std::cmp::Ordering;

use kai_core::version::MavenVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let (a, b, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (va, vb, vc) = (MavenVersion::parse(a), MavenVersion::parse(b), MavenVersion::parse(c));
    assert_eq!(va.as_str(), a);
    assert_eq!(va.cmp(&vb), vb.cmp(&va).reverse(), "{a:?} vs {b:?}");
    assert_eq!(va.cmp(&vb) == Ordering::Equal, va == vb);
    assert_eq!(va.cmp(&va), Ordering::Equal);
    let digit_first = |s: &str| s.starts_with(|c: char| c.is_ascii_digit()) && kai_core::ident::is_valid(s);
    if digit_first(a) && digit_first(b) && digit_first(c) && va <= vb && vb <= vc {
        assert!(va <= vc, "{a:?} <= {b:?} <= {c:?} but not {a:?} <= {c:?}");
    }
    let mut all: Vec<MavenVersion> = [&va, &vb, &vc].iter().cycle().take(24).map(|v| (*v).clone()).collect();
    kai_core::version::sort_versions(&mut all);
});
