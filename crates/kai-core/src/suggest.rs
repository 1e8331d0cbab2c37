//! "Did you mean …": the nearest known names to a mistyped one.

/// Up to three candidates close to `wanted`: those that start with it, then those
/// within a small edit distance, nearest first.
pub fn nearest<'a, I>(wanted: &str, candidates: I) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let distance = if c.starts_with(wanted) || wanted.starts_with(c) { 0 } else { levenshtein(wanted, c) };
            (distance <= limit).then_some((distance, c))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Edit distance in characters (insertions, deletions, substitutions).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// "did you mean a, b or c?" or `None` when nothing is near.
pub fn did_you_mean(names: &[&str]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("did you mean {one}?")),
        [init @ .., last] => Some(format!("did you mean {} or {last}?", init.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn finds_typos_and_prefixes() {
        let apps = ["jmsadmin", "ssod-grensesnitt", "telenormobil", "jms-bridge"];
        assert_eq!(nearest("jmsadmn", apps), ["jmsadmin"]);
        assert_eq!(nearest("ssod", apps), ["ssod-grensesnitt"]);
        assert!(nearest("zzzzzzzz", apps).is_empty());
        assert_eq!(did_you_mean(&["a", "b", "c"]).unwrap(), "did you mean a, b or c?");
    }
}
