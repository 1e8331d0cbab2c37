//! Apache httpd's `balancer-manager` page (mod_proxy_balancer), the pure half: reading
//! the page (each balancer's nonce, each worker's status flags and busy count, by the
//! table's header names) and the form that changes a worker (docs/deploy.md).

use std::fmt;

/// What kai sets on a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerState {
    /// Drain (`N`): no new requests, except sticky ones; the ones under way go on.
    Drain,
    /// Drain and disabled (`N`, `D`): out of rotation.
    Disabled,
    /// Neither flag: in rotation once httpd finds it usable.
    Enabled,
}

impl WorkerState {
    /// The form fields that set the flags, `w_status_<flag>=0|1`.
    fn fields(self) -> [(&'static str, &'static str); 2] {
        match self {
            WorkerState::Drain => [("w_status_N", "1"), ("w_status_D", "0")],
            WorkerState::Disabled => [("w_status_N", "1"), ("w_status_D", "1")],
            WorkerState::Enabled => [("w_status_N", "0"), ("w_status_D", "0")],
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkerState::Drain => "drain",
            WorkerState::Disabled => "disabled",
            WorkerState::Enabled => "enabled",
        })
    }
}

/// One worker as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    /// The worker's URL, `http://10.0.1.11:8080`.
    pub url: String,
    /// The status words: `Init Ok`, `Init Drn Dis`, `Init Err`, …
    pub status: String,
    /// Requests being served now.
    pub busy: u64,
}

impl Worker {
    fn has(&self, word: &str) -> bool {
        self.status.split_whitespace().any(|w| w == word)
    }

    /// In rotation: httpd says `Ok`, and it is not drained, disabled, stopped, in error
    /// or failing its health check.
    pub fn usable(&self) -> bool {
        self.has("Ok") && !["Drn", "Dis", "Stop", "Err", "HcFl"].iter().any(|w| self.has(w))
    }

    /// No request under way.
    pub fn drained(&self) -> bool {
        self.busy == 0
    }

    /// Its flags are the ones `state` sets (a change read back after the form was sent).
    pub fn is(&self, state: WorkerState) -> bool {
        match state {
            WorkerState::Drain => self.has("Drn") && !self.has("Dis"),
            WorkerState::Disabled => self.has("Dis"),
            WorkerState::Enabled => !self.has("Drn") && !self.has("Dis"),
        }
    }
}

/// One balancer of the page: its name, the nonce its changes need, its workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balancer {
    pub name: String,
    pub nonce: String,
    pub workers: Vec<Worker>,
}

impl Balancer {
    pub fn worker(&self, url: &str) -> Option<&Worker> {
        self.workers.iter().find(|w| w.url == url)
    }
}

/// Why a page could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("no balancer {0:?} on the balancer-manager page (balancers there: {1})")]
    NoBalancer(String, String),
}

/// The balancer `name` on a balancer-manager page.
pub fn parse_page(html: &str, name: &str) -> Result<Balancer, PageError> {
    let balancers = parse_balancers(html);
    let names: Vec<String> = balancers.iter().map(|b| b.name.clone()).collect();
    balancers
        .into_iter()
        .find(|b| b.name == name)
        .ok_or_else(|| PageError::NoBalancer(name.to_owned(), if names.is_empty() { "none".into() } else { names.join(", ") }))
}

/// Every balancer on the page, in order; a section it cannot read is left out.
pub fn parse_balancers(html: &str) -> Vec<Balancer> {
    let mut found = Vec::new();
    for section in html.split("<h3>").skip(1) {
        let Some(name) = between(section, "balancer://", "<").map(str::trim) else { continue };
        let nonce = between(section, "nonce=", "\"").map(|n| n.split('&').next().unwrap_or(n).to_owned()).unwrap_or_default();
        let workers = section.split("<table").find(|t| t.contains("Worker URL")).map(parse_workers).unwrap_or_default();
        found.push(Balancer { name: unescape(name), nonce: unescape(&nonce), workers });
    }
    found
}

/// The rows of the worker table, read by the header names `Worker URL`, `Status`, `Busy`.
fn parse_workers(table: &str) -> Vec<Worker> {
    let table = table.split("</table>").next().unwrap_or(table);
    let mut rows = table.split("<tr>").skip(1);
    let Some(header) = rows.next() else { return Vec::new() };
    let names: Vec<String> = cells(header, "<th>");
    let column = |wanted: &str| names.iter().position(|n| n == wanted);
    let (Some(url), Some(status), Some(busy)) = (column("Worker URL"), column("Status"), column("Busy")) else { return Vec::new() };
    rows.filter_map(|row| {
        let cells = cells(row, "<td>");
        let shown = |cell: &String| crate::table::printable(&crate::table::cut(cell, 512));
        Some(Worker { url: shown(cells.get(url)?), status: shown(cells.get(status)?), busy: cells.get(busy)?.trim().parse().ok()? })
    })
    .collect()
}

/// The text of each cell opened by `open` (`<td>` or `<th>`), tags taken out.
fn cells(row: &str, open: &str) -> Vec<String> {
    let close = open.replace('<', "</");
    row.split(open).skip(1).map(|cell| unescape(text(cell.split(close.as_str()).next().unwrap_or(cell)).trim())).collect()
}

/// Text with the tags taken out: `<a href="…">x</a>` is `x`.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn between<'h>(text: &'h str, start: &str, end: &str) -> Option<&'h str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

/// The form body that sets `worker` of `balancer` to `state`: what the page's own
/// form posts, with the page's nonce.
pub fn form(balancer: &str, worker: &str, nonce: &str, state: WorkerState) -> Vec<(String, String)> {
    let mut fields =
        vec![("b".to_owned(), balancer.to_owned()), ("w".to_owned(), worker.to_owned()), ("nonce".to_owned(), nonce.to_owned())];
    fields.extend(state.fields().iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page from httpd 2.4 (Debian), one worker drained and disabled.
    const PAGE: &str = r#"<body><h1>Load Balancer Manager for 127.0.0.1</h1>
<dl><dt>Server Version: Apache/2.4.71 (Debian)</dt>
<dt>Balancer changes will NOT be persisted on restart.</dt></dl>
<hr />
<h3>LoadBalancer Status for <a href="/balancer-manager?b=hello&amp;nonce=9a5739a9-8133-33b0-d3e8-f541bcddd59b">balancer://hello</a> [p3d9bdfba_hello]</h3>
<table><tr><th>MaxMembers</th><th>StickySession</th><th>DisableFailover</th><th>Timeout</th><th>FailoverAttempts</th><th>Method</th><th>Path</th><th>Active</th></tr>
<tr><td>2 [2 Used]</td>
<td> (None) </td><td>Off</td>
<td>0</td><td>1</td>
<td>byrequests</td>
<td>/</td>
<td>Yes</td>
</tr>
</table>
<br />
<table><tr><th>Worker URL</th><th>Route</th><th>RouteRedir</th><th>Factor</th><th>Set</th><th>Status</th><th>Elected</th><th>Busy</th><th>Load</th><th>To</th><th>From</th></tr>
<tr>
<td><a href="/balancer-manager?b=hello&amp;w=http://127.0.0.21:18080&amp;nonce=9a5739a9-8133-33b0-d3e8-f541bcddd59b">http://127.0.0.21:18080</a></td><td></td><td></td><td>1.00</td><td>0</td><td>Init Drn Dis </td><td>0</td><td>2</td><td>0</td><td>  0 </td><td>  0 </td></tr>
<tr>
<td><a href="/balancer-manager?b=hello&amp;w=http://127.0.0.22:18080&amp;nonce=9a5739a9-8133-33b0-d3e8-f541bcddd59b">http://127.0.0.22:18080</a></td><td></td><td></td><td>1.00</td><td>0</td><td>Init Ok </td><td>0</td><td>0</td><td>0</td><td>  0 </td><td>  0 </td></tr>
</table>
<hr />
<h3>LoadBalancer Status for <a href="/balancer-manager?b=other&amp;nonce=11111111-2222-3333-4444-555555555555">balancer://other</a> [p_other]</h3>
<table><tr><th>Worker URL</th><th>Status</th><th>Busy</th></tr>
<tr><td><a href="x">http://127.0.0.23:9000</a></td><td>Init Err </td><td>0</td></tr>
</table>
</body></html>"#;

    #[test]
    fn reads_each_balancer_its_nonce_and_its_workers() {
        let hello = parse_page(PAGE, "hello").expect("hello");
        assert_eq!(hello.nonce, "9a5739a9-8133-33b0-d3e8-f541bcddd59b");
        assert_eq!(
            hello.workers,
            [
                Worker { url: "http://127.0.0.21:18080".into(), status: "Init Drn Dis".into(), busy: 2 },
                Worker { url: "http://127.0.0.22:18080".into(), status: "Init Ok".into(), busy: 0 },
            ]
        );
        let other = parse_page(PAGE, "other").expect("other");
        assert_eq!((other.nonce.as_str(), other.workers.len()), ("11111111-2222-3333-4444-555555555555", 1));
        assert_eq!(parse_page(PAGE, "nope"), Err(PageError::NoBalancer("nope".into(), "hello, other".into())));
        assert_eq!(parse_page("<html>nothing</html>", "hello"), Err(PageError::NoBalancer("hello".into(), "none".into())));
    }

    #[test]
    fn usable_means_ok_and_no_flag_that_keeps_requests_away() {
        let worker = |status: &str| Worker { url: String::new(), status: status.into(), busy: 0 };
        assert!(worker("Init Ok").usable());
        for status in ["Init Drn Ok", "Init Drn Dis", "Init Dis", "Init Err", "Init Stop", "Init HcFl Ok", "Init"] {
            assert!(!worker(status).usable(), "{status}");
        }
        assert!(!Worker { busy: 1, ..worker("Init Ok") }.drained());
    }

    #[test]
    fn a_change_took_when_the_flags_read_back_are_the_ones_set() {
        let worker = |status: &str| Worker { url: String::new(), status: status.into(), busy: 0 };
        assert!(worker("Init Drn Ok").is(WorkerState::Drain));
        assert!(!worker("Init Drn Dis").is(WorkerState::Drain));
        assert!(worker("Init Drn Dis").is(WorkerState::Disabled));
        assert!(worker("Init Ok").is(WorkerState::Enabled));
        assert!(!worker("Init Drn Ok").is(WorkerState::Enabled));
        assert!(!worker("Init DrnX Ok").is(WorkerState::Drain), "whole words only");
    }

    #[test]
    fn the_form_carries_the_nonce_and_both_flags() {
        let body = form("hello", "http://10.0.1.11:8080", "n1", WorkerState::Disabled);
        let pairs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("b", "hello"), ("w", "http://10.0.1.11:8080"), ("nonce", "n1"), ("w_status_N", "1"), ("w_status_D", "1")]);
        assert!(form("b", "w", "n", WorkerState::Enabled).iter().all(|(k, v)| !k.starts_with("w_status") || v == "0"));
    }
}
