//! Identifiers: the names of apps, hosts and environments, and versions. They reach
//! file names and shell commands, so they are checked on the way in.

/// Longest identifier accepted.
pub const MAX_LEN: usize = 128;

/// `^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`, as docs/deploy.md says.
pub fn is_valid(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

/// Why `s` is not an identifier, for error messages; `None` when it is one.
pub fn problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if s.len() > MAX_LEN {
        return Some(format!("it is longer than {MAX_LEN} characters"));
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Some("it must start with a letter or a digit".into());
    }
    s.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
        .map(|c| format!("{c:?} is not allowed (letters, digits, '.', '_', '+', '-' only)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_versions() {
        for ok in ["prod", "ssod-grensesnitt", "10.60.0", "1.0-SNAPSHOT", "a_b+c.d", "X"] {
            assert!(is_valid(ok), "{ok}");
            assert_eq!(problem(ok), None);
        }
    }

    #[test]
    fn refuses_hostile_text() {
        for bad in ["", "-rf", ".hidden", "1.0;touch x", "a b", "$(id)", "a/b", "../x", "é", "a\nb"] {
            assert!(!is_valid(bad), "{bad:?}");
            assert!(problem(bad).is_some(), "{bad:?}");
        }
        assert!(!is_valid(&"a".repeat(129)));
        assert!(is_valid(&"a".repeat(128)));
    }
}
