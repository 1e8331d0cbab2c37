//! `kai diff <a> <b>` and the source side of `kai promote <from> <to>`: what two
//! environments run, app by app, from what their hosts said ([`HostStatus`]); and
//! whether the release an environment runs can be promoted (every active host on the
//! same version and artifact, healthy, a release from the repository).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::plan::properties_diff;
pub use crate::plan::PropertyDiff;
use crate::status::HostStatus;
use crate::table::Table;
use crate::version::MavenVersion;

/// What one environment runs of one app.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Whether the app has an `[env.<env>]` section.
    pub placed: bool,
    /// The versions its active hosts run, lowest first (one when they agree).
    pub versions: Vec<String>,
    /// Each active host's version (null: nothing deployed).
    pub hosts: BTreeMap<String, Option<String>>,
    /// The recorded checksums of what they run, one when they agree.
    pub checksums: Vec<String>,
    /// Hosts that could not be read.
    pub unread: Vec<String>,
}

/// One app in both environments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppDiff {
    pub app: String,
    /// The same version and artifact on every active host of both, the same properties.
    pub same: bool,
    pub a: Side,
    pub b: Side,
    /// The rendered properties that differ between the first active host read of each.
    pub properties: Vec<PropertyDiff>,
    /// Properties that differ only because what their template is rendered with
    /// differs: the same template in both environments (`{address}`, `{host}`,
    /// `{env}`, `{version}`), another host, environment or version.
    pub per_host: Vec<String>,
    /// For each of `per_host`, what differs: "another host", "another version", …
    #[serde(skip)]
    pub per_host_because: Vec<(String, String)>,
}

/// One app to compare: whether it is placed in each environment, and the property keys
/// whose template is the same in both, each with that template (their values differ
/// only by what the template is rendered with).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compared {
    pub app: String,
    pub in_a: bool,
    pub in_b: bool,
    pub same_template: BTreeMap<String, String>,
    /// Keys whose value holds a `{secret:NAME}` in either environment: compared, never shown.
    pub secret_keys: std::collections::BTreeSet<String>,
}

impl Compared {
    /// `app` between the environments `a` and `b`, as its configuration places it there.
    pub fn of(app: &crate::config::App, a: &str, b: &str) -> Compared {
        let mut secret_keys = app.secret_keys(a);
        secret_keys.extend(app.secret_keys(b));
        Compared {
            app: app.name.clone(),
            in_a: app.envs.contains_key(a),
            in_b: app.envs.contains_key(b),
            same_template: same_templates(app, a, b),
            secret_keys,
        }
    }
}

/// Why a value rendered from one template differs between two environments: the
/// placeholders it uses that differ between them.
fn because(template: &str, versions_differ: bool) -> String {
    let mut what = Vec::new();
    if ["{host}", "{address}", "{home}"].iter().any(|p| template.contains(p)) {
        what.push("host");
    }
    if template.contains("{env}") {
        what.push("environment");
    }
    if versions_differ && template.contains("{version}") {
        what.push("version");
    }
    match what.as_slice() {
        [] => "another rendering".to_owned(),
        [one] => format!("another {one}"),
        [rest @ .., last] => format!("another {} and {last}", rest.join(", ")),
    }
}

/// The keys whose template (the app's, or the environment's override) is the same in
/// both environments, with that template.
pub fn same_templates(app: &crate::config::App, a: &str, b: &str) -> BTreeMap<String, String> {
    let template = |env: &str, key: &str| {
        let over = app.envs.get(env).and_then(|p| p.properties.iter().find(|(k, _)| k == key));
        over.or_else(|| app.properties.iter().find(|(k, _)| k == key)).map(|(_, t)| t.source().to_owned())
    };
    let mut keys: BTreeSet<&String> = app.properties.iter().map(|(k, _)| k).collect();
    for env in [a, b] {
        keys.extend(app.envs.get(env).map(|p| p.properties.iter().map(|(k, _)| k)).into_iter().flatten());
    }
    keys.into_iter().filter_map(|k| Some((k.clone(), template(a, k).filter(|t| Some(t) == template(b, k).as_ref())?))).collect()
}

/// `kai diff`'s document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub a: String,
    pub b: String,
    pub same: bool,
    pub apps: Vec<AppDiff>,
}

/// The active hosts of `app` in `env`, as read.
fn side(statuses: &[HostStatus], env: &str, app: &str, placed: bool) -> (Side, Option<String>) {
    let mut side = Side { placed, ..Side::default() };
    let mut versions = BTreeSet::new();
    let mut checksums = BTreeSet::new();
    let mut properties = None;
    for s in statuses.iter().filter(|s| s.env == env && s.app == app && !s.standby) {
        if !s.is_reachable() {
            side.unread.push(s.host.clone());
            continue;
        }
        side.hosts.insert(s.host.clone(), s.current.clone());
        if let Some(current) = &s.current {
            versions.insert(MavenVersion::parse(current));
        }
        if let Some(sum) = &s.checksum {
            checksums.insert(sum.clone());
        }
        if properties.is_none() {
            properties.clone_from(&s.properties);
        }
    }
    side.versions = versions.into_iter().map(|v| v.as_str().to_owned()).collect();
    side.checksums = checksums.into_iter().collect();
    (side, properties)
}

/// Compares `apps` (each with whether it is placed in `a` and in `b`) between two
/// environments read into `statuses`.
pub fn diff(a: &str, b: &str, apps: &[Compared], statuses: &[HostStatus]) -> Diff {
    let apps: Vec<AppDiff> = apps
        .iter()
        .map(|c| {
            let app = &c.app;
            let (side_a, props_a) = side(statuses, a, app, c.in_a);
            let (side_b, props_b) = side(statuses, b, app, c.in_b);
            let (per_host, properties): (Vec<PropertyDiff>, Vec<PropertyDiff>) = match (&props_a, &props_b) {
                (Some(pa), Some(pb)) => {
                    let mut found = properties_diff(pa, pb, &c.secret_keys);
                    // A value holding a secret is never said to be the same in both: that
                    // would tell that two environments share a password.
                    let keys = |text: &str| crate::plan::parse_properties(text).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
                    let (in_a, in_b) = (keys(pa), keys(pb));
                    for key in c.secret_keys.iter().filter(|k| in_a.contains(k) && in_b.contains(k)) {
                        if !found.iter().any(|p| &p.key == key) {
                            let secret = Some(crate::mask::SECRET.to_owned());
                            found.push(PropertyDiff { key: key.clone(), a: secret.clone(), b: secret });
                        }
                    }
                    found.into_iter().partition(|p| c.same_template.contains_key(&p.key))
                }
                _ => (Vec::new(), Vec::new()),
            };
            let versions_differ = side_a.versions != side_b.versions;
            let per_host_because = per_host.iter().map(|p| (p.key.clone(), because(&c.same_template[&p.key], versions_differ))).collect();
            let per_host = per_host.into_iter().map(|p| p.key).collect();
            let agreed = |s: &Side| s.placed && s.unread.is_empty() && s.versions.len() == 1 && s.checksums.len() <= 1;
            let same = agreed(&side_a)
                && agreed(&side_b)
                && side_a.versions == side_b.versions
                && side_a.checksums == side_b.checksums
                && side_a.hosts.values().all(Option::is_some)
                && side_b.hosts.values().all(Option::is_some)
                && properties.is_empty();
            AppDiff { app: app.clone(), same, a: side_a, b: side_b, properties, per_host, per_host_because }
        })
        .collect();
    Diff { a: a.into(), b: b.into(), same: apps.iter().all(|d| d.same), apps }
}

impl Side {
    /// `1.2.0`, `1.1.0 (web1), 1.2.0 (web2, web3)` when hosts differ, `-` when nothing
    /// runs, `(not placed)`; unread hosts added.
    fn text(&self) -> String {
        if !self.placed {
            return "(not placed)".into();
        }
        let mut text = match self.versions.as_slice() {
            [] => "-".to_owned(),
            [one] if self.hosts.values().all(Option::is_some) => one.clone(),
            _ => {
                let mut by_version: BTreeMap<String, Vec<&str>> = BTreeMap::new();
                for (host, version) in &self.hosts {
                    by_version.entry(version.clone().unwrap_or_else(|| "-".into())).or_default().push(host);
                }
                by_version.iter().map(|(v, hosts)| format!("{v} ({})", hosts.join(", "))).collect::<Vec<_>>().join(", ")
            }
        };
        if let [sum] = self.checksums.as_slice() {
            text.push_str(&format!(" {}", short_sum(sum)));
        } else if self.checksums.len() > 1 {
            text.push_str(" (artifacts differ)");
        }
        if !self.unread.is_empty() {
            text.push_str(&format!(" ({} not read)", self.unread.join(", ")));
        }
        text
    }
}

/// `sha256:0bcea969…`
fn short_sum(sum: &str) -> String {
    match sum.split_once(':') {
        Some((algorithm, hex)) if hex.len() > 8 => format!("{algorithm}:{}…", &hex[..8]),
        _ => sum.to_owned(),
    }
}

impl Diff {
    /// The table of `kai diff`, then each app's differing properties.
    pub fn render(&self) -> String {
        let mut table = Table::new(&["app", &self.a, &self.b, ""]);
        for d in &self.apps {
            let verdict = match (d.a.placed, d.b.placed) {
                (true, false) => format!("only in {}", self.a),
                (false, true) => format!("only in {}", self.b),
                _ if d.same => "same".into(),
                _ if !d.properties.is_empty() && d.a.versions == d.b.versions && d.a.checksums == d.b.checksums => {
                    "properties differ".into()
                }
                _ => "DIFFERS".into(),
            };
            table.row([d.app.clone(), d.a.text(), d.b.text(), verdict]);
        }
        let mut out = table.render();
        for d in self.apps.iter().filter(|d| !d.properties.is_empty() || !d.per_host.is_empty()) {
            out.push_str(&format!("\n{}: properties ({} -> {}):\n", d.app, self.a, self.b));
            for p in &d.properties {
                let show = |v: &Option<String>| v.as_deref().map_or_else(|| "(not set)".into(), crate::table::printable);
                out.push_str(&format!("  {}: {} -> {}\n", crate::table::printable(&p.key), show(&p.a), show(&p.b)));
            }
            let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (key, why) in &d.per_host_because {
                by_reason.entry(why).or_default().push(key);
            }
            for (why, keys) in by_reason {
                out.push_str(&format!("  the same template, {why}: {}\n", keys.join(", ")));
            }
        }
        out
    }
}

/// Why the release `env` runs of `app` cannot be promoted: one reason per host (or for
/// the app), empty when it can. Every active host must be read, run the same version
/// with the same recorded checksum, and not fail its health check; the version must be
/// a repository release: no SNAPSHOT, no local build.
pub fn promotion_problems(statuses: &[HostStatus], env: &str, app: &str) -> Vec<String> {
    let actives: Vec<&HostStatus> = statuses.iter().filter(|s| s.env == env && s.app == app && !s.standby).collect();
    let mut problems = Vec::new();
    if actives.is_empty() {
        problems.push(format!("{app} has no active server in {env}"));
    }
    for s in &actives {
        if let Some(error) = &s.error {
            problems.push(format!("{}: could not be read ({error})", s.host));
        } else if s.current.is_none() {
            problems.push(format!("{}: runs nothing", s.host));
        } else if s.healthy == Some(false) {
            problems.push(format!("{}: fails its health check", s.host));
        }
    }
    let versions: BTreeSet<&str> = actives.iter().filter_map(|s| s.current.as_deref()).collect();
    if versions.len() > 1 {
        let each: Vec<String> = actives.iter().filter_map(|s| Some(format!("{} runs {}", s.host, s.current.as_deref()?))).collect();
        problems.push(format!("the hosts disagree: {}", each.join(", ")));
    }
    let sums: BTreeSet<&str> = actives.iter().filter_map(|s| s.checksum.as_deref()).collect();
    if sums.len() > 1 {
        let each: Vec<String> = actives.iter().filter_map(|s| Some(format!("{} has {}", s.host, s.checksum.as_deref()?))).collect();
        problems.push(format!("the artifacts differ: {}", each.join(", ")));
    }
    if let [version] = versions.iter().copied().collect::<Vec<_>>().as_slice() {
        if crate::local_build::is_local(version) {
            problems.push(format!("{version} is a local build: only a release from the repository is promoted"));
        } else if MavenVersion::parse(version).is_snapshot() {
            problems.push(format!("{version} is a SNAPSHOT: only a release is promoted (its artifact changes under the same name)"));
        }
        if sums.is_empty() && problems.is_empty() {
            problems.push(format!("no checksum is recorded for {version} on its hosts"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    const SUM_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SUM_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn compared(in_a: bool, in_b: bool, same_template: &[&str]) -> Compared {
        Compared {
            app: "hello".into(),
            in_a,
            in_b,
            same_template: same_template.iter().map(|k| ((*k).to_owned(), "{address}".to_owned())).collect(),
            secret_keys: Default::default(),
        }
    }

    fn host(env: &str, host: &str, version: Option<&str>, sum: &str, properties: &str) -> HostStatus {
        let mut facts = HostFacts { current: version.map(Into::into), properties: Some(properties.into()), ..HostFacts::default() };
        if let Some(v) = version {
            facts.checksums.insert(v.into(), sum.into());
        }
        HostStatus::read(env, "hello", host, false, facts, None)
    }

    #[test]
    fn the_same_release_and_properties_are_the_same() {
        let statuses = [
            host("test", "t1", Some("1.2.0"), SUM_A, "a=1\n"),
            host("test", "t2", Some("1.2.0"), SUM_A, "a=1\n"),
            host("prod", "p1", Some("1.2.0"), SUM_A, "a=1\n"),
        ];
        let d = diff("test", "prod", &[compared(true, true, &[])], &statuses);
        assert!(d.same, "{d:?}");
        assert!(d.render().contains("same"), "{}", d.render());
    }

    #[test]
    fn a_value_holding_a_secret_is_never_said_to_be_the_same_in_both() {
        let statuses = [
            host("test", "t1", Some("1.2.0"), SUM_A, "a=1\napi.header=Bearer same\n"),
            host("prod", "p1", Some("1.2.0"), SUM_A, "a=1\napi.header=Bearer same\n"),
        ];
        let mut c = compared(true, true, &[]);
        c.secret_keys.insert("api.header".into());
        let d = diff("test", "prod", &[c], &statuses);
        let shown: Vec<(&str, Option<&str>)> = d.apps[0].properties.iter().map(|p| (p.key.as_str(), p.a.as_deref())).collect();
        assert_eq!(shown, [("api.header", Some(crate::mask::SECRET))], "{d:?}");
        assert!(!d.same && !d.render().contains("Bearer"), "{}", d.render());
    }

    #[test]
    fn versions_artifacts_and_properties_that_differ_are_shown_with_secrets_masked() {
        let statuses = [
            host("test", "t1", Some("1.2.0"), SUM_A, "db=test-db\ndb.password=hunter2\nonly.test=x\n"),
            host("prod", "p1", Some("1.1.0"), SUM_B, "db=prod-db\ndb.password=s3cret\n"),
            host("prod", "p2", Some("1.2.0"), SUM_A, "db=prod-db\n"),
        ];
        let d = diff("test", "prod", &[compared(true, true, &[])], &statuses);
        assert!(!d.same);
        let app = &d.apps[0];
        assert_eq!(app.b.versions, ["1.1.0", "1.2.0"]);
        assert_eq!(app.b.checksums.len(), 2);
        let keys: Vec<(&str, Option<&str>, Option<&str>)> =
            app.properties.iter().map(|p| (p.key.as_str(), p.a.as_deref(), p.b.as_deref())).collect();
        assert_eq!(
            keys,
            [
                ("db", Some("test-db"), Some("prod-db")),
                ("db.password", Some("(secret, not shown)"), Some("(secret, not shown)")),
                ("only.test", Some("x"), None)
            ]
        );
        let text = d.render();
        assert!(
            text.contains("1.1.0 (p1), 1.2.0 (p2)") && text.contains("DIFFERS") && !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
    }

    #[test]
    fn a_property_with_the_same_template_differs_only_by_host_and_does_not_make_a_difference() {
        let statuses = [
            host("test", "t1", Some("1.2.0"), SUM_A, "address=10.0.0.1\n"),
            host("prod", "p1", Some("1.2.0"), SUM_A, "address=10.1.0.1\n"),
        ];
        let d = diff("test", "prod", &[compared(true, true, &["address"])], &statuses);
        assert!(d.same, "{d:?}");
        assert_eq!(d.apps[0].per_host, ["address"]);
        assert!(d.render().contains("the same template, another host: address"), "{}", d.render());
    }

    #[test]
    fn a_credential_in_a_url_never_shows_and_a_difference_only_there_is_named() {
        let statuses = [
            host("test", "t1", Some("1.2.0"), SUM_A, "db.url=jdbc:postgresql://app:hunter2-test@db/app\nmq=amqp://u:a@mq\n"),
            host("prod", "p1", Some("1.2.0"), SUM_A, "db.url=jdbc:postgresql://app:hunter2-prod@db-prod/app\nmq=amqp://u:b@mq\n"),
        ];
        let d = diff("test", "prod", &[compared(true, true, &[])], &statuses);
        let text = d.render() + &serde_json::to_string(&d).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("db.url: jdbc:postgresql://app:***@db/app -> jdbc:postgresql://app:***@db-prod/app"), "{text}");
        assert!(text.contains("mq: amqp://u:***@mq (its credentials differ, not shown)"), "{text}");
    }

    #[test]
    fn a_value_that_differs_because_the_version_differs_says_so() {
        let statuses = [
            host("test", "t1", Some("1.2.0"), SUM_A, "label=hello-1.2.0\n"),
            host("prod", "p1", Some("1.1.0"), SUM_A, "label=hello-1.1.0\n"),
        ];
        let mut compared = compared(true, true, &["label"]);
        compared.same_template.insert("label".into(), "{app}-{version}".into());
        let d = diff("test", "prod", &[compared], &statuses);
        assert!(d.render().contains("the same template, another version: label"), "{}", d.render());
        assert!(!d.render().contains("another host"), "{}", d.render());
    }

    #[test]
    fn an_app_placed_on_one_side_only_is_marked() {
        let statuses = [host("test", "t1", Some("1.0"), SUM_A, "")];
        let d = diff("test", "prod", &[compared(true, false, &[])], &statuses);
        assert!(!d.same);
        assert!(d.render().contains("only in test"), "{}", d.render());
    }

    #[test]
    fn a_promotion_needs_agreeing_healthy_hosts_running_a_repository_release() {
        let ok = [host("test", "t1", Some("1.2.0"), SUM_A, ""), host("test", "t2", Some("1.2.0"), SUM_A, "")];
        assert_eq!(promotion_problems(&ok, "test", "hello"), Vec::<String>::new());

        let disagree = [host("test", "t1", Some("1.2.0"), SUM_A, ""), host("test", "t2", Some("1.1.0"), SUM_A, "")];
        let problems = promotion_problems(&disagree, "test", "hello");
        assert!(problems.iter().any(|p| p.contains("t1 runs 1.2.0, t2 runs 1.1.0")), "{problems:?}");

        let republished = [host("test", "t1", Some("1.2.0"), SUM_A, ""), host("test", "t2", Some("1.2.0"), SUM_B, "")];
        assert!(promotion_problems(&republished, "test", "hello").iter().any(|p| p.contains("the artifacts differ")));

        let mut sick = ok.clone();
        sick[1].healthy = Some(false);
        assert_eq!(promotion_problems(&sick, "test", "hello"), ["t2: fails its health check"]);

        let snapshot = [host("test", "t1", Some("1.3.0-SNAPSHOT"), SUM_A, "")];
        assert!(promotion_problems(&snapshot, "test", "hello")[0].contains("SNAPSHOT"));
        let local = [host("test", "t1", Some("1.3.0+local.0bcea969"), SUM_A, "")];
        assert!(promotion_problems(&local, "test", "hello")[0].contains("local build"));

        let mut unread = ok.clone();
        unread[0] = HostStatus::unreachable("test", "hello", "t1", false, "connection refused".into());
        assert!(promotion_problems(&unread, "test", "hello")[0].starts_with("t1: could not be read"));
        assert_eq!(promotion_problems(&ok, "prod", "hello"), ["hello has no active server in prod"]);
    }
}
