//! What a plan was made from, so a saved plan can tell whether it still holds: per
//! host, the facts the planner read (not the ones that move on their own, like free
//! disk space), their fingerprint, and the differences named one by one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::facts::HostFacts;

/// The facts of one host that a plan depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSummary {
    pub current: Option<String>,
    /// Sorted by name.
    pub releases: Vec<String>,
    pub checksums: BTreeMap<String, String>,
    pub settings: BTreeMap<String, String>,
    pub properties: Option<String>,
    pub stale: Vec<String>,
    pub disabled: bool,
    pub healthy: Option<bool>,
    pub in_rotation: Option<bool>,
}

impl HostSummary {
    pub fn of(facts: &HostFacts) -> HostSummary {
        let mut releases = facts.releases.clone();
        releases.sort();
        let mut stale = facts.stale.clone();
        stale.sort();
        HostSummary {
            current: facts.current.clone(),
            releases,
            checksums: facts.checksums.clone(),
            settings: facts.settings.clone(),
            properties: facts.properties.as_deref().map(digest_secrets),
            stale,
            disabled: facts.disabled,
            healthy: facts.healthy,
            in_rotation: facts.in_rotation,
        }
    }
}

/// The properties with every value as its digest: a saved plan only compares them, and
/// a value may hold a secret whatever its key is called (`{secret:NAME}` in a longer
/// value), so none is written down.
fn digest_secrets(properties: &str) -> String {
    properties
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key, value)) => format!("{key}=(digest {})\n", of(&value)),
            _ => format!("{line}\n"),
        })
        .collect()
}

/// The summaries of every host.
pub fn summaries(facts: &BTreeMap<String, HostFacts>) -> BTreeMap<String, HostSummary> {
    facts.iter().map(|(host, f)| (host.clone(), HostSummary::of(f))).collect()
}

pub use crate::digest::of;

/// What changed on which host between `then` and `now`, one line each; empty when
/// nothing did.
pub fn changes(then: &BTreeMap<String, HostSummary>, now: &BTreeMap<String, HostSummary>) -> Vec<String> {
    let mut out = Vec::new();
    let none = HostSummary::default();
    let hosts: std::collections::BTreeSet<&String> = then.keys().chain(now.keys()).collect();
    for host in hosts {
        let (a, b) = match (then.get(host), now.get(host)) {
            (Some(a), Some(b)) => (a, b),
            (None, Some(_)) => {
                out.push(format!("{host}: was not part of the plan"));
                continue;
            }
            (Some(_), None) => {
                out.push(format!("{host}: is no longer part of the deploy"));
                continue;
            }
            (None, None) => (&none, &none),
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(nothing)".into());
        let flag = |v: Option<bool>| v.map_or("unknown", |b| if b { "yes" } else { "no" });
        if a.current != b.current {
            out.push(format!("{host}: current was {}, is now {}", show(&a.current), show(&b.current)));
        }
        if a.releases != b.releases {
            out.push(format!("{host}: releases were [{}], are now [{}]", a.releases.join(", "), b.releases.join(", ")));
        }
        if a.checksums != b.checksums || a.settings != b.settings {
            out.push(format!("{host}: recorded checksums or settings of a release changed"));
        }
        if a.properties != b.properties {
            out.push(format!("{host}: the properties of the current release changed"));
        }
        if a.stale != b.stale {
            out.push(format!("{host}: temporary folders of an interrupted stage changed"));
        }
        if a.disabled != b.disabled {
            out.push(format!("{host}: the disabled marker was {}, is now {}", flag(Some(a.disabled)), flag(Some(b.disabled))));
        }
        if a.in_rotation != b.in_rotation {
            out.push(format!("{host}: in rotation was {}, is now {}", flag(a.in_rotation), flag(b.in_rotation)));
        }
        if a.healthy != b.healthy {
            out.push(format!("{host}: healthy was {}, is now {}", flag(a.healthy), flag(b.healthy)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_change_by_host_and_the_fingerprint_follows_them() {
        let mut a = HostSummary { current: Some("1.0.0".into()), releases: vec!["1.0.0".into()], ..HostSummary::default() };
        let then: BTreeMap<String, HostSummary> = [("web1".to_owned(), a.clone())].into();
        assert!(changes(&then, &then).is_empty());
        a.current = Some("1.1.0".into());
        a.in_rotation = Some(false);
        let now: BTreeMap<String, HostSummary> = [("web1".to_owned(), a)].into();
        assert_eq!(changes(&then, &now), ["web1: current was 1.0.0, is now 1.1.0", "web1: in rotation was unknown, is now no"]);
        assert_ne!(of(&then), of(&now));
        assert_eq!(of(&then), of(&then.clone()));
    }
}
