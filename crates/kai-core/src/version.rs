//! Maven version ordering, as Maven 3.9's `ComparableVersion` sorts versions.
//!
//! A version is split into items at `.`, at `-` and where digits meet letters. A `-`
//! (and a digit/letter switch) opens a sublist, so `1-1` sorts below `1.1`. Numbers
//! compare by value, however long; qualifiers by the well-known order
//! `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp`, and
//! any other word after all of them, alphabetically. Trailing zeros and release
//! qualifiers are trimmed, so `1`, `1.0`, `1.0.0` and `1-ga` are the same version.
//!
//! Two rules surprise people and matter for deploys:
//!
//! - `a`, `b` and `m` mean alpha, beta and milestone only when a digit follows at
//!   once: `1a1` is `1-alpha-1`, but `1-a-1` and `2.0.a` carry an unknown word `a`,
//!   which sorts *above* the release.
//! - A word after a dot counts as if after a hyphen (Maven 3.9, MNG-7644):
//!   `2.0.a` = `2-a` and `1.0.0.RC1` < `1.0.0-RC2`.
//!
//! Only ASCII digits count as digits (Java's `Character.isDigit` takes any Unicode
//! digit); kai's identifiers are ASCII anyway.

use std::cmp::Ordering;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A version as Maven orders it; it keeps the text it was parsed from.
#[derive(Clone, Debug)]
pub struct MavenVersion {
    raw: String,
    items: Vec<Item>,
}

impl MavenVersion {
    /// Parses any text; like `ComparableVersion`, there is no invalid version.
    pub fn parse(s: &str) -> MavenVersion {
        MavenVersion { raw: s.to_owned(), items: parse_items(s) }
    }

    /// The text this version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the text ends with `-SNAPSHOT`, in any case.
    pub fn is_snapshot(&self) -> bool {
        const SUFFIX: &str = "-snapshot";
        self.raw.len().checked_sub(SUFFIX.len()).and_then(|at| self.raw.get(at..)).is_some_and(|tail| tail.eq_ignore_ascii_case(SUFFIX))
    }

    /// Whether this is a release: no snapshot, no pre-release qualifier (alpha, beta,
    /// milestone, rc/cr, snapshot) and no unknown word. `sp`, `ga`, `final` and
    /// `release` are releases.
    pub fn is_release(&self) -> bool {
        !self.is_snapshot() && !self.items.iter().any(Item::blocks_release)
    }
}

/// The highest version that [`MavenVersion::is_release`], by Maven order.
///
/// This is not the `<release>` of `maven-metadata.xml`, which is merely the last one
/// uploaded: a hotfix for an old line must not win over the newest line.
pub fn newest_release<'a, I: IntoIterator<Item = &'a MavenVersion>>(versions: I) -> Option<&'a MavenVersion> {
    versions.into_iter().filter(|v| v.is_release()).max_by(|a, b| a.cmp(b))
}

/// Sorts ascending in Maven order; versions Maven deems equal keep their order.
pub fn sort_versions(versions: &mut [MavenVersion]) {
    sort_by_maven(versions, &MavenVersion::cmp);
}

/// A stable merge sort by `cmp` that never panics. Maven's order is not a total order
/// for every text (`x < 0-beta` and `0-beta < 0`, yet `x > 0`: a word first, then a
/// pre-release, then nothing), and the standard library's sorts may panic when an
/// order is not total; versions come from repositories and hosts, so kai sorts them
/// with this.
pub fn sort_by_maven<T: Clone>(items: &mut [T], cmp: &dyn Fn(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let mid = items.len() / 2;
    sort_by_maven(&mut items[..mid], cmp);
    sort_by_maven(&mut items[mid..], cmp);
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < items.len() {
        if cmp(&items[j], &items[i]) == Ordering::Less {
            merged.push(items[j].clone());
            j += 1;
        } else {
            merged.push(items[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..]);
    items.clone_from_slice(&merged);
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_lists(&self.items, &other.items)
    }
}

impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MavenVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MavenVersion {}

impl fmt::Display for MavenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for MavenVersion {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MavenVersion::parse(s))
    }
}

/// One parsed piece of a version.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    /// A number, as its digits without leading zeros (empty for zero).
    Number(String),
    /// A word, lowercased, with its alias applied (`ga` → "", `cr` → `rc`, ...).
    Qualifier(String),
    /// What follows a `-` or a switch between digits and letters.
    List(Vec<Item>),
}

/// The well-known qualifiers, lowest first; "" is the release itself.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

impl Item {
    fn number(digits: &str) -> Item {
        Item::Number(digits.trim_start_matches('0').to_owned())
    }

    /// `followed_by_digit` turns the shorthands `a1`, `b1`, `m1` into alpha, beta, milestone.
    fn qualifier(word: &str, followed_by_digit: bool) -> Item {
        let word = match (followed_by_digit, word) {
            (true, "a") => "alpha",
            (true, "b") => "beta",
            (true, "m") => "milestone",
            _ => word,
        };
        let word = match word {
            "ga" | "final" | "release" => "",
            "cr" => "rc",
            other => other,
        };
        Item::Qualifier(word.to_owned())
    }

    fn parse(text: &str, is_digit: bool) -> Item {
        if is_digit {
            Item::number(text)
        } else {
            Item::qualifier(text, false)
        }
    }

    /// Zero, the empty word and the empty list: what trimming removes.
    fn is_null(&self) -> bool {
        match self {
            Item::Number(digits) => digits.is_empty(),
            Item::Qualifier(word) => word.is_empty(),
            Item::List(items) => items.is_empty(),
        }
    }

    fn blocks_release(&self) -> bool {
        match self {
            Item::Number(_) => false,
            Item::Qualifier(word) => !matches!(word.as_str(), "" | "sp"),
            Item::List(items) => items.iter().any(Item::blocks_release),
        }
    }

    /// Compares with the other version's item at the same place; `None` when the
    /// other version has ended there.
    fn compare(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Item::Number(digits), None) => {
                if digits.is_empty() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (Item::Number(a), Some(Item::Number(b))) => compare_digits(a, b),
            (Item::Number(_), Some(_)) | (Item::List(_), Some(Item::Qualifier(_))) => Ordering::Greater,
            (Item::Qualifier(word), None) => compare_qualifiers(word, ""),
            (Item::Qualifier(a), Some(Item::Qualifier(b))) => compare_qualifiers(a, b),
            (Item::Qualifier(_), Some(_)) | (Item::List(_), Some(Item::Number(_))) => Ordering::Less,
            // Every item counts against the end, not just the first (MNG-6964).
            (Item::List(items), None) => items.iter().map(|item| item.compare(None)).find(|order| order.is_ne()).unwrap_or(Ordering::Equal),
            (Item::List(a), Some(Item::List(b))) => compare_lists(a, b),
        }
    }
}

fn compare_lists(left: &[Item], right: &[Item]) -> Ordering {
    for at in 0..left.len().max(right.len()) {
        let order = match (left.get(at), right.get(at)) {
            (Some(l), r) => l.compare(r),
            (None, Some(r)) => r.compare(None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if order.is_ne() {
            return order;
        }
    }
    Ordering::Equal
}

/// Numbers by value: without leading zeros, the longer is larger.
fn compare_digits(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Known qualifiers by their rank, unknown words after them in Java's string order.
fn compare_qualifiers(a: &str, b: &str) -> Ordering {
    let rank = |word: &str| QUALIFIERS.iter().position(|known| *known == word).unwrap_or(QUALIFIERS.len());
    rank(a).cmp(&rank(b)).then_with(|| a.encode_utf16().cmp(b.encode_utf16()))
}

fn parse_items(version: &str) -> Vec<Item> {
    let text = version.to_lowercase();
    let piece = |from: usize, to: usize| text.get(from..to).unwrap_or_default();
    let mut lists = OpenLists::default();
    let mut is_digit = false;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '.' | '-' => {
                lists.push(if at == start { Item::Number(String::new()) } else { Item::parse(piece(start, at), is_digit) });
                start = at + 1;
                if c == '-' {
                    lists.open();
                }
            }
            '0'..='9' => {
                if !is_digit && at > start {
                    // `1.0.RC1` reads as `1.0-RC1` (MNG-7644).
                    lists.open_unless_empty();
                    lists.push(Item::qualifier(piece(start, at), true));
                    start = at;
                    lists.open();
                }
                is_digit = true;
            }
            _ => {
                if is_digit && at > start {
                    lists.push(Item::number(piece(start, at)));
                    start = at;
                    lists.open();
                }
                is_digit = false;
            }
        }
    }
    if text.len() > start {
        if !is_digit {
            lists.open_unless_empty();
        }
        lists.push(Item::parse(piece(start, text.len()), is_digit));
    }
    lists.finish()
}

/// The lists being filled while parsing: each new list is the last item of the one
/// before, and items only ever go into the newest.
struct OpenLists {
    levels: Vec<Vec<Item>>,
}

impl Default for OpenLists {
    fn default() -> Self {
        OpenLists { levels: vec![Vec::new()] }
    }
}

impl OpenLists {
    fn push(&mut self, item: Item) {
        if let Some(list) = self.levels.last_mut() {
            list.push(item);
        }
    }

    fn open(&mut self) {
        self.levels.push(Vec::new());
    }

    fn open_unless_empty(&mut self) {
        if self.levels.last().is_some_and(|list| !list.is_empty()) {
            self.open();
        }
    }

    /// Nests the lists, trimming each from the innermost out.
    fn finish(mut self) -> Vec<Item> {
        let mut inner: Option<Vec<Item>> = None;
        while let Some(mut list) = self.levels.pop() {
            if let Some(child) = inner.take() {
                list.push(Item::List(child));
            }
            trim(&mut list);
            inner = Some(list);
        }
        inner.unwrap_or_default()
    }
}

/// Removes null items from the end, looking past sublists that are not null:
/// `1.0-0` → `1`, and `1.0-sp` → `1-sp`.
fn trim(items: &mut Vec<Item>) {
    let mut at = items.len();
    while at > 0 {
        at -= 1;
        let Some(item) = items.get(at) else { break };
        if item.is_null() {
            items.remove(at);
        } else if !matches!(item, Item::List(_)) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> MavenVersion {
        MavenVersion::parse(s)
    }

    #[test]
    fn an_order_that_is_not_total_still_sorts_without_a_panic() {
        let (x, beta, zero) = (v("x"), v("0-beta"), v("0"));
        assert!(x < beta && beta < zero && x > zero, "Maven's order is not transitive here");
        let mut many: Vec<MavenVersion> = (0..200).map(|i| v(["x", "0-beta", "0", "y1", "0-alpha", "1.0", "a", "0.0"][i % 8])).collect();
        sort_versions(&mut many);
        assert_eq!(many.len(), 200);
    }

    /// Every version is below every one after it, both ways round.
    fn assert_ascending(versions: &[&str]) {
        for (i, low) in versions.iter().enumerate() {
            for high in &versions[i + 1..] {
                assert_eq!(v(low).cmp(&v(high)), Ordering::Less, "{low} < {high}");
                assert_eq!(v(high).cmp(&v(low)), Ordering::Greater, "{high} > {low}");
            }
        }
    }

    fn assert_all_equal(versions: &[&str]) {
        for a in versions {
            for b in versions {
                assert_eq!(v(a).cmp(&v(b)), Ordering::Equal, "{a} == {b}");
                assert_eq!(v(a), v(b), "{a} == {b}");
            }
        }
    }

    // The tables below come from Maven 3.9's ComparableVersionTest.

    #[test]
    fn qualifiers_in_maven_order() {
        assert_ascending(&[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ]);
    }

    #[test]
    fn numbers_in_maven_order() {
        // "2.0.a" is above "2.0": a lone `a` is an unknown word, not alpha.
        assert_ascending(&[
            "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2",
            "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
        ]);
    }

    #[test]
    fn equal_versions() {
        assert_all_equal(&["1", "1.0", "1.0.0", "1-0", "1.0-0"]);
        assert_all_equal(&["1a", "1-a", "1.0-a", "1.0.0-a", "1.0a", "1.0.0a"]);
        assert_all_equal(&["1x", "1-x", "1.0-x", "1.0.0-x", "1.0x", "1.0.0x"]);
        assert_all_equal(&["1cr", "1rc"]);
        assert_all_equal(&["1a1", "1-alpha-1", "1alpha1"]);
        assert_all_equal(&["1b2", "1-beta-2"]);
        assert_all_equal(&["1m3", "1-milestone-3", "1Milestone3", "1MileStone3", "1MILESTONE3"]);
        assert_all_equal(&["1X", "1x"]);
        assert_all_equal(&["1A", "1a"]);
        assert_all_equal(&["1Cr", "1Rc", "1cR", "1rC"]);
        assert_all_equal(&["1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"]);
    }

    #[test]
    fn release_aliases_and_trailing_zeros_are_trimmed() {
        assert_all_equal(&[
            "1",
            "1.0",
            "1.0.0",
            "1-ga",
            "1.ga",
            "1-final",
            "1-release",
            "1ga",
            "1GA",
            "1Final",
            "1FINAL",
            "1RELEASE",
            "1RELeaSE",
        ]);
    }

    #[test]
    fn letter_shorthand_needs_a_digit_right_after() {
        assert_all_equal(&["1a1", "1-alpha-1"]);
        // With a hyphen between, `a` is an unknown word, which sorts above everything known.
        assert_ascending(&["1-alpha-1", "1", "1-sp-1", "1-a-1"]);
        assert_ascending(&["2.0", "2.0.a"]);
    }

    #[test]
    fn comparing() {
        for (low, high) in [
            ("1", "2"),
            ("1.5", "2"),
            ("1", "2.5"),
            ("1.0", "1.1"),
            ("1.1", "1.2"),
            ("1.0.0", "1.1"),
            ("1.0.1", "1.1"),
            ("1.1", "1.2.0"),
            ("1.0-alpha-1", "1.0"),
            ("1.0-alpha-1", "1.0-alpha-2"),
            ("1.0-alpha-1", "1.0-beta-1"),
            ("1.0-beta-1", "1.0-SNAPSHOT"),
            ("1.0-SNAPSHOT", "1.0"),
            ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
            ("1.0", "1.0-1"),
            ("1.0-1", "1.0-2"),
            ("1.0.0", "1.0-1"),
            ("2.0-1", "2.0.1"),
            ("2.0.1-klm", "2.0.1-lmn"),
            ("2.0.1", "2.0.1-xyz"),
            ("2.0.1", "2.0.1-123"),
            ("2.0.1-xyz", "2.0.1-123"),
            ("0.7", "2"),
            ("0.2", "1.0.7"),
            ("10.8.1", "10.10.0"),
        ] {
            assert_ascending(&[low, high]);
        }
        assert_ascending(&["1.0-alpha-1", "1.0-SNAPSHOT", "1.0", "1.0-sp-1"]);
    }

    #[test]
    fn unusual_versions_sort_transitively() {
        // MNG-5568
        assert_ascending(&["6.1.0rc3", "6.1.0", "6.1H.5-beta"]);
        // MNG-6964: a list counts whole against the end of the other version.
        assert_ascending(&["1-0.alpha", "1-0.beta", "1"]);
    }

    #[test]
    fn dotted_words_read_as_hyphenated() {
        // MNG-7644
        for x in ["abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"] {
            assert_ascending(&[&format!("1.0.0.{x}1"), &format!("1.0.0-{x}2")]);
            assert_all_equal(&[&format!("2-{x}"), &format!("2.0.{x}"), &format!("2.0.0.{x}")]);
        }
    }

    #[test]
    fn big_numbers_compare_by_value() {
        // MNG-6572
        assert_ascending(&["20190126.230843", "1234567890.12345", "123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"]);
        assert_ascending(&[
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "100000000000000000000",
            "100000000000000000000.1",
        ]);
        assert_all_equal(&["1.00000000000000000000000000002", "1.2"]);
        let ones: Vec<String> = (0..19).map(|n| format!("{}1", "0".repeat(n))).collect();
        assert_all_equal(&ones.iter().map(String::as_str).collect::<Vec<_>>());
        let zeros: Vec<String> = (1..20).map(|n| "0".repeat(n)).collect();
        assert_all_equal(&zeros.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn words_and_digits() {
        assert_ascending(&["é", "1"]);
        assert_ascending(&["J", "7"]);
        assert_ascending(&["c", "7"]);
        assert_ascending(&["aardvark", "zebra", "ζέβρα"]);
        assert_ascending(&["5.aardvark", "5.zebra"]);
        assert_all_equal(&["1.é", "1.É"]);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in ["", ".", "-", "..", "--", "-1", ".1", "1.", "1-", "a-", "ä1ö-2.ü", "1..2"] {
            let parsed = v(s);
            assert_eq!(parsed.as_str(), s);
            assert_eq!(parsed.cmp(&parsed), Ordering::Equal);
        }
        assert_all_equal(&["", ".", "-", "0", "0.0-0"]);
        assert_all_equal(&["1..2", "1.0.2"]);
    }

    #[test]
    fn snapshots_and_releases() {
        assert!(v("1.0-SNAPSHOT").is_snapshot());
        assert!(v("1.0-snapshot").is_snapshot());
        assert!(!v("1.0").is_snapshot());
        assert!(!v("SNAPSHOT").is_snapshot());
        for release in ["1.0", "10.60.0", "1.0-1", "1.0-sp", "1.0-sp-2", "1-ga", "1.0.Final", "2-RELEASE"] {
            assert!(v(release).is_release(), "{release} is a release");
        }
        for not in [
            "1.0-SNAPSHOT",
            "1.0-alpha-1",
            "1.0b2",
            "1.0-M3",
            "1.0-rc1",
            "1.0-CR2",
            "1.0.0.RC1",
            "1.0-hotfix",
            "1.0-redhat-1",
            "1.0-alpha-1-SNAPSHOT",
        ] {
            assert!(!v(not).is_release(), "{not} is no release");
        }
    }

    #[test]
    fn newest_release_is_by_order_not_upload() {
        // In upload order, as maven-metadata.xml lists them; 10.8.2 is a late hotfix.
        let versions: Vec<MavenVersion> =
            ["10.8.1", "10.10.0", "10.11.0-SNAPSHOT", "10.11.0-rc1", "10.8.2", "10.12.0-beta-1"].into_iter().map(v).collect();
        let newest = newest_release(&versions).map(MavenVersion::as_str);
        assert_eq!(newest, Some("10.10.0"));
        assert_eq!(newest_release(&versions[2..4]), None);
        assert_eq!(newest_release(&[]), None);
    }

    #[test]
    fn sorting_is_ascending_and_stable() {
        let mut versions: Vec<MavenVersion> =
            ["10.10.0", "1.0", "10.8.1", "1", "1.0-SNAPSHOT", "1.0.0", "10.8.2"].into_iter().map(v).collect();
        sort_versions(&mut versions);
        let order: Vec<&str> = versions.iter().map(MavenVersion::as_str).collect();
        assert_eq!(order, ["1.0-SNAPSHOT", "1.0", "1", "1.0.0", "10.8.1", "10.8.2", "10.10.0"]);
    }

    #[test]
    fn text_is_kept() {
        let version: MavenVersion = "1.0-RC1".parse().unwrap_or_else(|never| match never {});
        assert_eq!(version.to_string(), "1.0-RC1");
        assert_eq!(version.as_str(), "1.0-RC1");
        assert_eq!(version, v("1-rc-1"));
    }
}
