//! The checksums a Maven repository publishes beside an artifact (`.sha256`, `.sha1`, `.md5`).

use std::fmt;

/// A digest algorithm whose checksum file a repository may publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    Sha256,
    Sha1,
    Md5,
}

impl Algorithm {
    /// The order in which checksum files are tried: strongest first.
    pub const PREFERENCE: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Sha1, Algorithm::Md5];

    /// The extension of the checksum file, appended to the artifact's file name.
    pub fn extension(&self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
        }
    }

    /// The number of hex digits in a digest.
    pub fn hex_len(&self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha1 => 40,
            Algorithm::Md5 => 32,
        }
    }

    /// The coreutils program that computes this digest on a server.
    pub fn tool(&self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256sum",
            Algorithm::Sha1 => "sha1sum",
            Algorithm::Md5 => "md5sum",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// A digest with its algorithm; `hex` is lowercase.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.extension(), self.hex)
    }
}

/// Reads the content of a checksum file: its first whitespace-separated token must be
/// the hex digest (any case), as written by `sha256sum` or published by Maven.
pub fn parse_checksum_file(algorithm: Algorithm, text: &str) -> Result<Checksum, String> {
    let Some(token) = text.split_whitespace().next() else {
        return Err(format!("empty {} checksum file", algorithm.extension()));
    };
    if token.len() != algorithm.hex_len() || !token.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("expected {} hex digits for {}, found {:?}", algorithm.hex_len(), algorithm.extension(), shorten(token)));
    }
    Ok(Checksum { algorithm, hex: token.to_ascii_lowercase() })
}

/// Keeps error messages readable when a server answers with a whole HTML page.
fn shorten(token: &str) -> String {
    const MAX: usize = 80;
    match token.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &token[..end]),
        None => token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";

    #[test]
    fn bare_digest_is_accepted() {
        let checksum = parse_checksum_file(Algorithm::Sha1, SHA1).expect("valid");
        assert_eq!(checksum.algorithm, Algorithm::Sha1);
        assert_eq!(checksum.hex, SHA1);
    }

    #[test]
    fn sha256sum_output_uses_first_token() {
        let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let text = format!("{hex}  app-1.0.zip\n");
        let checksum = parse_checksum_file(Algorithm::Sha256, &text).expect("valid");
        assert_eq!(checksum.hex, hex.to_ascii_lowercase());
    }

    #[test]
    fn leading_whitespace_and_newline_are_ignored() {
        let text = format!("\n  {SHA1}\r\n");
        assert!(parse_checksum_file(Algorithm::Sha1, &text).is_ok());
    }

    #[test]
    fn wrong_length_names_what_was_found() {
        let err = parse_checksum_file(Algorithm::Sha256, SHA1).expect_err("too short");
        assert!(err.contains("64"), "{err}");
        assert!(err.contains(SHA1), "{err}");
    }

    #[test]
    fn non_hex_is_rejected() {
        let text = "<html><body>Not Found</body></html>";
        let err = parse_checksum_file(Algorithm::Md5, text).expect_err("html");
        assert!(err.contains("<html>"), "{err}");
    }

    #[test]
    fn empty_file_is_rejected() {
        let err = parse_checksum_file(Algorithm::Md5, " \n").expect_err("empty");
        assert!(err.contains("empty md5"), "{err}");
    }

    #[test]
    fn long_garbage_is_shortened() {
        let text = "x".repeat(500);
        let err = parse_checksum_file(Algorithm::Sha1, &text).expect_err("garbage");
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn display_names_algorithm() {
        let checksum = Checksum { algorithm: Algorithm::Md5, hex: "d41d8cd98f00b204e9800998ecf8427e".to_string() };
        assert_eq!(checksum.to_string(), "md5:d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn preference_is_strongest_first() {
        let lens: Vec<usize> = Algorithm::PREFERENCE.iter().map(Algorithm::hex_len).collect();
        assert_eq!(lens, [64, 40, 32]);
        let tools: Vec<&str> = Algorithm::PREFERENCE.iter().map(Algorithm::tool).collect();
        assert_eq!(tools, ["sha256sum", "sha1sum", "md5sum"]);
    }
}
