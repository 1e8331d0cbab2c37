//! The properties file kai writes for each host, its text masked for plans, and the
//! settings that say whether a release already on a host runs as configured now.

use super::*;
use crate::template::Rendering;

/// The properties file kai writes for `app` on `host` running `version`; `None` when
/// the app has no `properties_file`.
pub fn rendered_properties(environment: &Environment, app: &App, host: &str, version: &str) -> Option<String> {
    properties_text(environment, app, host, version, Rendering::Real)
}

/// The properties text, its secrets rendered as `rendering` says; `Shown`: values as
/// [`crate::mask::value`] shows them, and every secret as `{secret:NAME}`.
pub(super) fn properties_text(environment: &Environment, app: &App, host: &str, version: &str, rendering: Rendering) -> Option<String> {
    let masked = rendering == Rendering::Shown;
    app.properties_file.as_ref()?;
    let home = app_home(&environment.hosts[host], app);
    let vars = host_vars(environment, app, host, version, &home);
    // Shown, a secret stays `{secret:NAME}`: its value is only ever in the real text.
    let render = |t: &crate::template::Template| t.render_for(&vars, rendering);
    let mut merged: Vec<(&str, String)> = app.properties.iter().map(|(k, t)| (k.as_str(), render(t))).collect();
    let overrides = app.envs.get(&environment.name).map(|p| p.properties.as_slice()).unwrap_or_default();
    for (key, template) in overrides {
        let value = render(template);
        match merged.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => merged.push((key, value)),
        }
    }
    let value = |k: &str, v: &str| if masked { escape_value(&crate::mask::value(k, v)) } else { escape_value(v) };
    Some(merged.iter().map(|(k, v)| format!("{}={}\n", escape_key(k), value(k, v))).collect())
}

/// The settings a release runs with, as recorded beside its checksum on the host
/// (`settings sha256:…`): the rendered properties and the start, stop and health
/// commands. A host whose recorded settings differ is restarted with the new ones.
pub fn settings_line(environment: &Environment, app: &App, host: &str, version: &str) -> String {
    let home = app_home(&environment.hosts[host], app);
    let vars = host_vars(environment, app, host, version, &home);
    let health = match &app.health.check {
        HealthCheck::Http { url } => url.render(&vars),
        HealthCheck::Command { argv } => argv.join(" "),
        HealthCheck::None => String::new(),
    };
    // Secrets as salted digests: the line (kept on the host) changes with a value and
    // holds none.
    let properties = properties_text(environment, app, host, version, Rendering::Digest);
    format!("settings {}", crate::fingerprint::of(&(properties, &app.start, &app.stop, health)))
}

/// How the settings of the release running on a host differ from what the
/// configuration says now: property by property (secrets masked), or the scripts.
pub(super) fn settings_changes(environment: &Environment, app: &App, host: &str, version: &str, facts: &HostFacts) -> Vec<String> {
    let mut changes = Vec::new();
    if let Some(file) = &app.properties_file {
        let wanted = rendered_properties(environment, app, host, version).unwrap_or_default();
        match &facts.properties {
            Some(running) if *running != wanted => changes.extend(property_diff(running, &wanted, &app.secret_keys(&environment.name))),
            Some(_) => {}
            None => changes.push(format!("its {file} is missing")),
        }
    }
    let recorded = facts.settings.get(version);
    if changes.is_empty() && recorded.is_some_and(|line| *line != settings_line(environment, app, host, version)) {
        changes.push("its start, stop or health settings changed".to_owned());
    }
    changes
}

/// The `key=value` lines of a properties file kai wrote, in order (blank lines and
/// comments left out; `\=` in a key is not its end).
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut at = None;
            let mut escaped = false;
            for (i, c) in l.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '=' if !escaped => {
                        at = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            match at {
                Some(i) => (l[..i].to_owned(), l[i + 1..].to_owned()),
                None => (l.to_owned(), String::new()),
            }
        })
        .collect()
}

/// A property whose value differs, as [`crate::mask::value`] shows values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyDiff {
    pub key: String,
    /// Null where the key is not set.
    pub a: Option<String>,
    pub b: Option<String>,
}

/// Every property whose value differs between two properties files, in `b`'s order
/// then the keys only `a` has; values as [`crate::mask::value`] shows them.
pub fn properties_diff(a: &str, b: &str, secret_keys: &std::collections::BTreeSet<String>) -> Vec<PropertyDiff> {
    let is_secret = |key: &str| is_secret_key(key) || secret_keys.contains(key);
    let (a, b) = (parse_properties(a), parse_properties(b));
    let mut keys: Vec<&String> = b.iter().map(|(k, _)| k).collect();
    keys.extend(a.iter().map(|(k, _)| k).filter(|k| !b.iter().any(|(x, _)| x == *k)));
    keys.into_iter()
        .filter_map(|key| {
            let value = |side: &[(String, String)]| side.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let (va, vb) = (value(&a), value(&b));
            if va == vb {
                return None;
            }
            let shown = |v: &Option<String>| {
                v.as_deref().map(|v| if is_secret(key) { crate::mask::SECRET.to_owned() } else { crate::mask::value(key, v).into_owned() })
            };
            let (a, b) = (shown(&va), shown(&vb));
            // Values that differ only where they are masked (a password in a URL) say so.
            let hidden = |v: Option<String>| v.map(|v| format!("{v} (its credentials differ, not shown)"));
            let (a, b) = if a == b && !is_secret(key) { (hidden(a), hidden(b)) } else { (a, b) };
            Some(PropertyDiff { key: key.clone(), a, b })
        })
        .collect()
}

/// `key: old -> new` for each property that differs; values of keys named like a
/// secret, or holding a `{secret:NAME}` (`secret_keys`), are never shown.
pub fn property_diff(old: &str, new: &str, secret_keys: &std::collections::BTreeSet<String>) -> Vec<String> {
    let shown = |v: &Option<String>| v.as_deref().map_or_else(|| "(none)".to_owned(), crate::table::printable);
    properties_diff(old, new, secret_keys)
        .into_iter()
        .map(|p| match (is_secret_key(&p.key) || secret_keys.contains(&p.key), &p.a, &p.b) {
            (true, Some(_), Some(_)) => format!("{}: changed (secret, not shown)", crate::table::printable(&p.key)),
            _ => format!("{}: {} -> {}", crate::table::printable(&p.key), shown(&p.a), shown(&p.b)),
        })
        .collect()
}

pub(super) fn escape_key(key: &str) -> String {
    escape_value(key).replace('=', "\\=").replace(':', "\\:").replace(' ', "\\ ")
}

pub(super) fn escape_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r")
}
