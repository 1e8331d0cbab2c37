//! "Did you mean …": the nearest known names to a mistyped one.

/// Up to three candidates close to `wanted`: those that start with it, then those
/// within a small edit distance (Levenshtein, in characters: insertions, deletions and
/// substitutions), nearest first.
pub fn nearest<'a, I>(wanted: &str, candidates: I) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let distance = if c.starts_with(wanted) || wanted.starts_with(c) { 0 } else { strsim::levenshtein(wanted, c) };
            (distance <= limit).then_some((distance, c))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
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
    fn finds_typos_and_prefixes() {
        let apps = ["jmsadmin", "ssod-grensesnitt", "telenormobil", "jms-bridge"];
        assert_eq!(nearest("jmsadmn", apps), ["jmsadmin"]);
        assert_eq!(nearest("ssod", apps), ["ssod-grensesnitt"]);
        assert!(nearest("zzzzzzzz", apps).is_empty());
        assert_eq!(did_you_mean(&["a", "b", "c"]).unwrap(), "did you mean a, b or c?");
    }
}
