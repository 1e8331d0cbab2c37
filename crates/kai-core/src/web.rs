//! The pages of `kai serve`, rendered on the server from what the hosts said (the same
//! [`HostStatus`] and history [`Entry`]s `kai status` and `kai history` show): plain
//! HTML with one stylesheet and one small script served by kai itself, nothing from
//! outside. Every piece of text from a host or the configuration is escaped; no page
//! carries a secret (the documents hold none: property values are never in them).

use std::collections::BTreeSet;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::history::Entry;
use crate::status::{by_env_and_app, versions_text, HostStatus, Problem};

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// What [`segment`] leaves as it is: ASCII letters and digits, `-`, `_`, `.` and `+`
/// (so `~` too is encoded). Every other byte, and every byte of a non-ASCII
/// character, becomes `%XX` (upper-case hex).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'+');

/// A path segment for a link (`/env/<name>`): names are validated identifiers, and
/// anything else is percent-encoded all the same.
fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// A whole page: the navigation, how old the snapshot is, then `body`.
pub fn page(title: &str, age: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · kai</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"stylesheet\" href=\"/kai.css\">\
         <script src=\"/kai.js\" defer></script></head>\n<body><header><a href=\"/\" class=\"home\">kai</a> \
         <a href=\"/\">what runs where</a> <a href=\"/history\">history</a> <span class=\"age\" id=\"age\">{age}</span></header>\n\
         <main>\n<h1>{title}</h1>\n{body}</main></body></html>\n",
        title = escape(title),
        age = escape(age),
    )
}

/// The marks of a cell, each a `<span>` whose title says what it means.
fn marks<'p>(problems: impl Iterator<Item = &'p Problem>) -> String {
    let mut seen = BTreeSet::new();
    let mut out = String::new();
    for p in problems {
        let class = match p {
            Problem::Drift { .. } | Problem::Reports { .. } => "drift",
            Problem::Unreachable { .. } => "unread",
            Problem::Unhealthy { .. } => "failing",
            Problem::OutOfRotation { .. } => "out",
            Problem::Locked { started: true, stale: false, .. } => "deploying",
            Problem::Locked { .. } => "locked",
            Problem::Orphan { .. } => "orphan",
            Problem::BalancerUnread { .. } => "unknown",
        };
        if seen.insert(class) {
            out.push_str(&format!(" <span class=\"mark {class}\" title=\"{}\">{}</span>", escape(&p.describe()), p.symbol()));
        }
    }
    out
}

/// Applications × environments: each cell the version (or versions) running there,
/// marked; a filter box narrows the rows as one types (kai.js).
pub fn matrix(statuses: &[HostStatus], problems: &[Problem]) -> String {
    let envs = crate::status::envs_in_order(statuses);
    let apps: BTreeSet<&str> = statuses.iter().map(|s| s.app.as_str()).collect();
    let groups = by_env_and_app(statuses);
    let mut out = String::from(
        "<p><input type=\"search\" id=\"filter\" placeholder=\"filter applications\" autocomplete=\"off\" aria-label=\"filter applications\"></p>\n\
         <table id=\"matrix\"><thead><tr><th>application</th>",
    );
    for env in &envs {
        out.push_str(&format!("<th><a href=\"/env/{}\">{}</a></th>", segment(env), escape(env)));
    }
    out.push_str("</tr></thead><tbody>\n");
    for app in &apps {
        out.push_str(&format!("<tr data-app=\"{}\"><th><a href=\"/app/{}\">{}</a></th>", escape(app), segment(app), escape(app)));
        for env in &envs {
            match groups.get(&(*env, *app)) {
                None => out.push_str("<td class=\"none\"></td>"),
                Some(hosts) => {
                    let m = marks(problems.iter().filter(|p| p.concerns(env, app)));
                    out.push_str(&format!(
                        "<td data-env=\"{}\"><span class=\"version\">{}</span>{m}</td>",
                        escape(env),
                        escape(&versions_text(hosts))
                    ));
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out.push_str(&legend(problems));
    out
}

/// What each mark means, then every problem in words.
fn legend(problems: &[Problem]) -> String {
    let mut out = String::from(
        "<p class=\"legend\"><span class=\"key drift\">*</span> hosts disagree \
         <span class=\"key unread\">?</span> a host could not be read \
         <span class=\"key unknown\">%</span> the balancer could not be read \
         <span class=\"key failing\">!</span> health check failing \
         <span class=\"key out\">~</span> out of rotation \
         <span class=\"key locked\">#</span> locked \
         <span class=\"key deploying\">#</span> deploy in progress \
         <span class=\"key orphan\">+</span> a process of a release that is not current</p>\n",
    );
    if !problems.is_empty() {
        out.push_str("<ul class=\"problems\">\n");
        for p in problems {
            out.push_str(&format!("<li>{}</li>\n", escape(&p.describe())));
        }
        out.push_str("</ul>\n");
    }
    out
}

/// One environment: applications × hosts, each cell what the host runs, marked.
pub fn environment(env: &str, statuses: &[HostStatus], problems: &[Problem]) -> String {
    let (statuses, hosts, apps) = crate::status::env_grid(env, statuses);
    let mut out = String::from("<table><thead><tr><th>application</th>");
    for host in &hosts {
        out.push_str(&format!("<th>{}</th>", escape(host)));
    }
    out.push_str("</tr></thead><tbody>\n");
    for app in &apps {
        out.push_str(&format!("<tr data-app=\"{}\"><th><a href=\"/app/{}\">{}</a></th>", escape(app), segment(app), escape(app)));
        for host in &hosts {
            match statuses.iter().find(|s| s.app == *app && s.host == *host) {
                None => out.push_str("<td class=\"none\"></td>"),
                Some(s) => out.push_str(&format!("<td>{}</td>", host_cell(s, problems))),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    let here: Vec<Problem> = problems.iter().filter(|p| apps.iter().any(|a| p.concerns(env, a))).cloned().collect();
    out.push_str(&legend(&here));
    out
}

/// What one host runs of one app: version, role, health, rotation, releases, marks.
fn host_cell(s: &HostStatus, problems: &[Problem]) -> String {
    if let Some(error) = &s.error {
        return format!("<span class=\"mark unread\" title=\"{}\">?</span> not read", escape(error));
    }
    let version = s.current.as_deref().unwrap_or("-");
    let role = if s.standby { " <span class=\"role\">standby</span>" } else { "" };
    let health = match s.healthy {
        Some(true) => " <span class=\"ok\">ok</span>",
        Some(false) => " <span class=\"bad\">FAILING</span>",
        None => "",
    };
    let rotation = match (s.standby, s.in_rotation) {
        (false, Some(false)) => " <span class=\"bad\">out</span>",
        (false, None) if s.is_reachable() => " <span class=\"bad\">rotation unknown</span>",
        _ => "",
    };
    let m = marks(problems.iter().filter(|p| p.marks(&s.env, &s.app, &s.host)));
    let releases = escape(&s.releases.join(" "));
    format!(
        "<span class=\"version\">{}</span>{role}{health}{rotation}{m}<div class=\"releases\" title=\"releases kept\">{releases}</div>",
        escape(version)
    )
}

/// One application: every environment and host, then its history.
pub fn application(app: &str, statuses: &[HostStatus], problems: &[Problem], events: &[Entry]) -> String {
    let mut out = String::from("<table><thead><tr><th>environment</th><th>host</th><th>runs</th></tr></thead><tbody>\n");
    for s in statuses.iter().filter(|s| s.app == app) {
        out.push_str(&format!(
            "<tr><td><a href=\"/env/{}\">{}</a></td><td>{}</td><td>{}</td></tr>\n",
            segment(&s.env),
            escape(&s.env),
            escape(&s.host),
            host_cell(s, problems)
        ));
    }
    out.push_str("</tbody></table>\n<h2>history</h2>\n");
    let mine: Vec<Entry> = events.iter().filter(|e| e.app == app).cloned().collect();
    out.push_str(&history(&mine));
    out
}

/// Deploys, rollbacks and unlocks, newest first: when, who from where, from → to, the
/// result, how long; rows carry their app, environment and user for the filter.
pub fn history(events: &[Entry]) -> String {
    if events.is_empty() {
        return "<p>Nothing recorded yet.</p>\n".into();
    }
    let mut out = String::from(
        "<p><input type=\"search\" id=\"filter\" placeholder=\"filter by application, environment or user\" autocomplete=\"off\" aria-label=\"filter\"></p>\n\
         <table id=\"history\"><thead><tr><th>time (UTC)</th><th>who</th><th>environment</th><th>application</th>\
         <th>version</th><th>action</th><th>result</th><th>took</th></tr></thead><tbody>\n",
    );
    for e in events {
        let from = if e.from.is_empty() { "-".to_owned() } else { e.from.join(",") };
        let action = match &e.promoted_from {
            Some(from) => format!("promote from {from}"),
            None => e.action.word().to_owned(),
        };
        let class = if matches!(e.result, crate::history::Outcome::Ok) { "ok" } else { "bad" };
        out.push_str(&format!(
            "<tr data-app=\"{app}\" data-env=\"{env}\" data-user=\"{user}\"><td>{time}</td><td>{user}@{machine}</td><td>{env}</td>\
             <td>{app}</td><td>{from} → {to}</td><td>{action}</td><td class=\"{class}\">{result}</td><td>{took:.1}s</td></tr>\n",
            app = escape(&e.app),
            env = escape(&e.env),
            user = escape(&e.user),
            machine = escape(&e.machine),
            time = escape(&crate::table::time(&e.time)),
            from = escape(&from),
            to = escape(&e.to),
            action = escape(&action),
            result = escape(e.result.word()),
            took = e.duration_ms as f64 / 1000.0,
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

/// An app's diff between two environments (as `kai diff` shows it), with links to
/// compare any two of `envs`.
pub fn diff(app: &str, envs: &[String], diff: &crate::diff::Diff) -> String {
    let mut out = format!("<h2>{} compared with {}</h2>\n<p class=\"pairs\">", escape(&diff.a), escape(&diff.b));
    for a in envs {
        for b in envs.iter().filter(|b| *b != a) {
            out.push_str(&format!(
                "<a href=\"/app/{}?a={}&amp;b={}\">{} / {}</a> ",
                segment(app),
                segment(a),
                segment(b),
                escape(a),
                escape(b)
            ));
        }
    }
    out.push_str("</p>\n<pre class=\"diff\">");
    out.push_str(&escape(&diff.render()));
    out.push_str("</pre>\n");
    out
}

/// The stylesheet, served as `/kai.css`.
pub const STYLESHEET: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}\
header{padding:.6em 1em;background:#1b1f24;color:#eee}header a{color:#eee;margin-right:1em;text-decoration:none}\
header .home{font-weight:bold}.age{float:right;color:#aaa}main{padding:1em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}\
thead th{background:#f6f8fa}td.none{background:#fafafa}.version{font-family:ui-monospace,monospace}\
.mark,.key{display:inline-block;min-width:1em;text-align:center;border-radius:3px;font-weight:bold;cursor:help}\
.drift{background:#fff3b0}.unread,.unknown{background:#e0e0e0}.failing,.bad{background:#ffd7d5;color:#a40e26}\
.out{background:#ffe2c6}.locked{background:#dde4ff}.orphan{background:#f3d9ff}.deploying{background:#c7f0d8;animation:pulse 1s infinite alternate}\
@keyframes pulse{from{opacity:1}to{opacity:.4}}.ok{color:#116329}.role{color:#666}.releases{color:#666;font-size:12px}\
.legend{color:#555;font-size:12px}input[type=search]{padding:.3em;width:20em}tr.hidden{display:none}\n";

/// The script, served as `/kai.js`: the filter as one types (kept in the address as
/// `#filter=…`, so a filtered page can be shared), and a reload when the snapshot
/// changes (the server's `/api/snapshot` says when it was taken).
pub const SCRIPT: &str = r##""use strict";
document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("filter");
  if (filter) {
    const apply = () => {
      const words = filter.value.toLowerCase().split(/\s+/).filter(w => w);
      for (const row of document.querySelectorAll("tbody tr")) {
        const text = [row.dataset.app, row.dataset.env, row.dataset.user].filter(x => x).join(" ").toLowerCase();
        row.classList.toggle("hidden", !words.every(w => text.includes(w)));
      }
      history.replaceState(null, "", filter.value ? "#filter=" + encodeURIComponent(filter.value) : location.pathname + location.search);
    };
    filter.addEventListener("input", apply);
    if (location.hash.startsWith("#filter=")) {
      filter.value = decodeURIComponent(location.hash.slice("#filter=".length));
      apply();
    }
  }
  let taken = null;
  const poll = async () => {
    try {
      const answer = await fetch("/api/snapshot", {cache: "no-store"});
      const snapshot = await answer.json();
      if (taken !== null && snapshot.taken !== taken && !(filter && filter.value)) { location.reload(); return; }
      taken = snapshot.taken;
    } catch (e) { /* the server restarts: try again */ }
    setTimeout(poll, 2000);
  };
  poll();
});
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    fn host(env: &str, app: &str, host: &str, version: Option<&str>) -> HostStatus {
        let facts = HostFacts { current: version.map(Into::into), ..HostFacts::default() };
        HostStatus::read(env, app, host, false, facts, None)
    }

    #[test]
    fn text_from_hosts_is_escaped() {
        assert_eq!(escape("<script>alert('x')</script> & \"y\""), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        let statuses = [host("prod", "<b>evil</b>", "web1", Some("1.0\"><script>"))];
        let html = matrix(&statuses, &crate::status::problems(&statuses));
        assert!(!html.contains("<b>evil") && !html.contains("<script>"), "{html}");
    }

    #[test]
    fn a_segment_keeps_letters_digits_and_four_marks_and_encodes_the_rest() {
        assert_eq!(segment("Hello-world_1.0+b"), "Hello-world_1.0+b");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("~%?#&=\"'<>"), "%7E%25%3F%23%26%3D%22%27%3C%3E");
        assert_eq!(segment("\u{0}\n\u{7f}"), "%00%0A%7F");
        assert_eq!(segment("blåbær €"), "bl%C3%A5b%C3%A6r%20%E2%82%AC");
        assert_eq!(segment(""), "");
        for byte in 0u8..0x80 {
            let c = char::from(byte);
            let kept = c.is_ascii_alphanumeric() || "-_.+".contains(c);
            let expected = if kept { c.to_string() } else { format!("%{byte:02X}") };
            assert_eq!(segment(&c.to_string()), expected, "{byte:#04x}");
        }
    }

    #[test]
    fn the_matrix_shows_versions_and_marks_drift() {
        let statuses = [
            host("prod", "hello", "web1", Some("1.1.0")),
            host("prod", "hello", "web2", Some("1.0.0")),
            host("test", "hello", "web3", Some("1.1.0")),
        ];
        let problems = crate::status::problems(&statuses);
        let html = matrix(&statuses, &problems);
        assert!(html.contains("<tr data-app=\"hello\">"), "{html}");
        assert!(html.contains("1.0.0/1.1.0") && html.contains("class=\"mark drift\""), "{html}");
        assert!(html.contains("href=\"/env/prod\""), "{html}");
    }
}
