//! `kai serve`: what runs where, for the whole team, in a browser. One task reads the
//! fleet every `--refresh` (all environments and hosts at once, over the transports kai
//! has); every page and API answer comes from the last snapshot, however many people
//! look. Read-only: no route starts, stops or changes anything.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query as Params, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kai_core::config::Config;
use kai_core::history::{self, Entry, Query};
use kai_core::status::{self, HostStatus, Problem};
use kai_core::web;
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

use crate::error::CliError;
use crate::settings::Settings;

/// Serve a read-only web page of what runs where: applications × environments with
/// marks for drift, failing health checks, servers out of rotation, held locks and
/// deploys in progress; each environment and application; the history across
/// environments. The same data as `kai status --json` and `kai history --json` is at
/// /api/status and /api/history.
///
/// The fleet is read once every --refresh, whatever the number of viewers. kai listens
/// on 127.0.0.1 unless --listen says otherwise, and refuses an address other machines
/// can reach without --token-env (a bearer token, or the password of basic auth, read
/// from that environment variable).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDRESS:PORT")]
    pub listen: SocketAddr,
    /// How often the fleet is read.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_refresh)]
    pub refresh: Duration,
    /// The environment variable holding the token every request must carry
    /// (`Authorization: Bearer <token>`, or basic auth with it as the password).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// A name this server is reached by, besides the listen address (and `localhost`
    /// on a loopback address); a request whose `Host` names anything else is refused
    /// (421), so a page of another site cannot read this one (DNS rebinding).
    #[arg(long = "host-name", value_name = "NAME")]
    pub host_names: Vec<String>,
}

fn parse_refresh(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (like \"30s\")"))?;
    if d < Duration::from_secs(1) {
        return Err(format!("{text:?}: at least 1s"));
    }
    Ok(d)
}

/// What the pages show: the fleet as it was read at `taken`.
#[derive(Default, Serialize)]
struct Snapshot {
    /// RFC 3339; none before the first read.
    taken: Option<String>,
    hosts: Vec<HostStatus>,
    problems: Vec<Problem>,
    #[serde(skip)]
    events: Vec<Entry>,
    /// Hosts whose history could not be read.
    #[serde(skip)]
    unread: Vec<crate::fleet::Unread>,
    #[serde(skip)]
    reads: u64,
}

struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    token: Option<String>,
    /// The names a request's `Host` may give (lowercase), and the port it may name.
    hosts: Vec<String>,
    port: u16,
    /// For the diff of an app between two environments (which keys share a template).
    config: Config,
}

pub async fn run(config_dir: &Option<std::path::PathBuf>, args: ServeArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config_dir, settings)?;
    let token = match &args.token_env {
        Some(var) => match std::env::var(var) {
            Ok(token) if !token.is_empty() => Some(token),
            _ => return Err(CliError::usage(format!("--token-env {var}: the variable {var} is not set"), None)),
        },
        None => None,
    };
    if !args.listen.ip().is_loopback() && token.is_none() {
        return Err(CliError::usage(
            format!("--listen {}: other machines could reach it, and there is no token", args.listen),
            Some("add --token-env VAR (every request must carry the token in VAR), or listen on 127.0.0.1".into()),
        ));
    }
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.map_err(|e| CliError::usage(format!("--listen {}: {e}", args.listen), None))?;
    let address = listener.local_addr().map_err(|e| CliError::Failed(e.into()))?;
    eprintln!("kai serve: http://{address}/ (the fleet is read every {})", humantime::format_duration(args.refresh));
    let hosts = allowed_hosts(&address, &args.host_names, &settings.machine);
    let shared = Arc::new(Shared {
        snapshot: RwLock::new(Arc::new(Snapshot::default())),
        token,
        hosts,
        port: address.port(),
        config: config.clone(),
    });
    let shared_reader = shared.clone();
    let app = Router::new()
        .route("/", get(matrix_page))
        .route("/env/{env}", get(env_page))
        .route("/app/{app}", get(app_page))
        .route("/history", get(history_page))
        .route("/api/status", get(api_status))
        .route("/api/history", get(api_history))
        .route("/api/snapshot", get(api_snapshot))
        .route("/api/diff", get(api_diff))
        .route("/kai.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], web::STYLESHEET) }))
        .route("/kai.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], web::SCRIPT) }))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared);
    let stop = async {
        while !crate::interrupt::requested() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // The reader runs beside the server in this task (its futures borrow the
    // configuration); it ends when the server does.
    let serving = axum::serve(crate::listener::Bounded::new(listener), app).with_graceful_shutdown(stop).into_future();
    tokio::select! {
        served = serving => served.map_err(|e| CliError::Failed(e.into()))?,
        () = refresh(&config, settings, &shared_reader, args.refresh) => {}
    }
    Ok(crate::interrupt::exit_code())
}

/// Reads every environment (all at once), then waits `every`; forever.
async fn refresh(config: &Config, settings: &Settings, shared: &Shared, every: Duration) {
    let mut reads = 0;
    loop {
        let reading = config.environments_in_order().map(|environment| {
            let apps = crate::config_files::apps_in(config, &environment.name);
            async move {
                // One read of each host: the facts, the health and the history together.
                let cap = kai_core::history::READ_NEWEST;
                let want = crate::fleet::Want { health: true, history: Some(cap) };
                let (statuses, read) = crate::fleet::read_env_with(settings, config, environment, &apps, want).await;
                let (records, unread) = crate::fleet::histories(&environment.name, read, cap, false);
                (statuses, records, unread)
            }
        });
        let mut hosts = Vec::new();
        let mut records = Vec::new();
        let mut unread = Vec::new();
        for (statuses, found, missed) in futures_util::future::join_all(reading).await {
            hosts.extend(statuses);
            records.extend(found);
            unread.extend(missed);
        }
        crate::fleet::judge_locks(&mut hosts, &settings.machine);
        reads += 1;
        let snapshot = Snapshot {
            taken: Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
            problems: status::problems(&hosts),
            events: history::events(records, &Query::default()),
            unread,
            hosts,
            reads,
        };
        *shared.snapshot.write().await = Arc::new(snapshot);
        tokio::time::sleep(every).await;
    }
}

/// The names a request may give as its `Host`: the listen address, `localhost` and
/// the loopback addresses when it is one, this machine's name when it listens on every
/// address, and the names given with `--host-name`.
fn allowed_hosts(address: &SocketAddr, named: &[String], machine: &str) -> Vec<String> {
    let mut hosts: Vec<String> = named.iter().map(|n| n.trim().to_lowercase()).collect();
    let ip = address.ip();
    hosts.push(match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    });
    if ip.is_loopback() {
        hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
    }
    if ip.is_unspecified() {
        hosts.extend([machine.to_lowercase(), "*".to_owned()]);
    }
    hosts
}

/// Whether `Host` (`name` or `name:port`) is one this server answers to: a name of
/// `allowed`, or, when it listens on every address (`*` in `allowed`), any address
/// literal (no name a DNS server could point here).
fn host_allowed(host: &str, allowed: &[String], port: u16) -> bool {
    let host = host.trim().to_lowercase();
    let (name, given_port) = match host.rsplit_once(':').filter(|(n, p)| !n.ends_with(':') && p.chars().all(|c| c.is_ascii_digit())) {
        Some((name, p)) if !name.is_empty() && (!name.starts_with('[') || name.ends_with(']')) => (name.to_owned(), p.parse::<u16>().ok()),
        _ => (host.clone(), None),
    };
    let literal = name.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok();
    (allowed.contains(&name) || (literal && allowed.iter().any(|a| a == "*"))) && given_port.is_none_or(|p| p == port)
}

/// Every answer: a `Host` this server answers to, the token when one is required, and
/// headers that keep pages to themselves (no script, style or frame from anywhere else).
async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !host_allowed(host, &shared.hosts, shared.port) {
        let said = format!(
            "this is kai serve for {}; a request for {:?} is refused (add --host-name NAME for a name it is reached by)\n",
            shared.hosts.join(", "),
            kai_core::table::printable(&kai_core::table::cut(host, 256))
        );
        return (StatusCode::MISDIRECTED_REQUEST, said).into_response();
    }
    if let Some(token) = &shared.token {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(presented);
        if !given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
            let mut refused = (StatusCode::UNAUTHORIZED, "a token is required\n").into_response();
            refused.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"kai\""));
            return refused;
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
               base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The token in `Authorization`: a bearer token, or the password of basic auth
/// (`user:password` in standard, padded base64, RFC 7617).
fn presented(value: &str) -> Option<String> {
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map_or(text.clone(), |(_, password)| password.to_owned()))
}

/// Equal, in a time that does not depend on where they differ (a different length is
/// told at once: the length of a token is no secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

async fn current(shared: &Shared) -> Arc<Snapshot> {
    shared.snapshot.read().await.clone()
}

/// `read 12s ago`, or that the first read is under way.
fn age(snapshot: &Snapshot) -> String {
    match &snapshot.taken {
        None => "reading the fleet…".into(),
        Some(taken) => match kai_core::table::since(taken, SystemTime::now()) {
            Some(ago) => format!("read {} ago", kai_core::table::age(ago)),
            None => format!("read at {taken}"),
        },
    }
}

fn not_read_yet() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "2")],
        Html(web::page("kai", "reading the fleet…", "<p>The fleet is being read; this page is ready in a moment.</p>\n")),
    )
        .into_response()
}

async fn matrix_page(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = current(&shared).await;
    if snapshot.taken.is_none() {
        return not_read_yet();
    }
    Html(web::page("what runs where", &age(&snapshot), &web::matrix(&snapshot.hosts, &snapshot.problems))).into_response()
}

async fn env_page(State(shared): State<Arc<Shared>>, Path(env): Path<String>) -> Response {
    let snapshot = current(&shared).await;
    if snapshot.taken.is_none() {
        return not_read_yet();
    }
    if !snapshot.hosts.iter().any(|s| s.env == env) {
        return (StatusCode::NOT_FOUND, Html(web::page("not found", &age(&snapshot), "<p>No such environment.</p>\n"))).into_response();
    }
    Html(web::page(&env, &age(&snapshot), &web::environment(&env, &snapshot.hosts, &snapshot.problems))).into_response()
}

/// `?a=ENV&b=ENV` on an app's page: the diff of the app between them.
#[derive(serde::Deserialize)]
struct Between {
    a: Option<String>,
    b: Option<String>,
}

async fn app_page(State(shared): State<Arc<Shared>>, Path(app): Path<String>, Params(between): Params<Between>) -> Response {
    let snapshot = current(&shared).await;
    if snapshot.taken.is_none() {
        return not_read_yet();
    }
    if !snapshot.hosts.iter().any(|s| s.app == app) {
        return (StatusCode::NOT_FOUND, Html(web::page("not found", &age(&snapshot), "<p>No such application.</p>\n"))).into_response();
    }
    let mut body = web::application(&app, &snapshot.hosts, &snapshot.problems, &snapshot.events);
    let placed = |env: &&String| shared.config.apps.get(&app).is_some_and(|a| a.envs.contains_key(*env));
    let envs: Vec<String> = shared.config.environment_order.iter().filter(placed).cloned().collect();
    if envs.len() >= 2 {
        let (a, b) = match (between.a, between.b) {
            (Some(a), Some(b)) if envs.contains(&a) && envs.contains(&b) => (a, b),
            _ => (envs[0].clone(), envs[1].clone()),
        };
        let compared = match shared.config.apps.get(&app) {
            Some(config) => kai_core::diff::Compared { in_a: true, in_b: true, ..kai_core::diff::Compared::of(config, &a, &b) },
            None => kai_core::diff::Compared {
                app: app.clone(),
                in_a: true,
                in_b: true,
                same_template: Default::default(),
                secret_keys: Default::default(),
            },
        };
        let diff = kai_core::diff::diff(&a, &b, &[compared], &snapshot.hosts);
        body.push_str(&web::diff(&app, &envs, &diff));
    }
    Html(web::page(&app, &age(&snapshot), &body)).into_response()
}

async fn history_page(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = current(&shared).await;
    if snapshot.taken.is_none() {
        return not_read_yet();
    }
    Html(web::page("history", &age(&snapshot), &web::history(&snapshot.events))).into_response()
}

/// The document of `kai status --json`.
async fn api_status(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = current(&shared).await;
    if snapshot.taken.is_none() {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")], "the fleet is being read\n").into_response();
    }
    Json(crate::json::StatusDoc { hosts: &snapshot.hosts, problems: &snapshot.problems }).into_response()
}

/// The document of `kai history --json`, every environment.
async fn api_history(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = current(&shared).await;
    Json(crate::json::HistoryDoc { events: &snapshot.events, unread: &snapshot.unread }).into_response()
}

/// `?a=ENV&b=ENV`: the document of `kai diff A B --json`, every app placed in either.
async fn api_diff(State(shared): State<Arc<Shared>>, Params(between): Params<Between>) -> Response {
    let snapshot = current(&shared).await;
    let known = |env: &Option<String>| env.as_ref().filter(|e| shared.config.environments.contains_key(*e)).cloned();
    let (Some(a), Some(b)) = (known(&between.a), known(&between.b)) else {
        return (StatusCode::BAD_REQUEST, "give two environments: /api/diff?a=ENV&b=ENV\n").into_response();
    };
    let compared: Vec<kai_core::diff::Compared> = shared
        .config
        .apps
        .values()
        .filter(|app| app.envs.contains_key(&a) || app.envs.contains_key(&b))
        .map(|app| kai_core::diff::Compared::of(app, &a, &b))
        .collect();
    Json(kai_core::diff::diff(&a, &b, &compared, &snapshot.hosts)).into_response()
}

/// When the snapshot was taken and how many reads so far: what pages poll to know
/// when to show something newer.
async fn api_snapshot(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = current(&shared).await;
    Json(serde_json::json!({ "taken": snapshot.taken, "reads": snapshot.reads })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_this_server_or_is_refused() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let allowed = allowed_hosts(&loopback, &["Kai.Example.org".into()], "build01");
        for host in ["127.0.0.1:8080", "localhost:8080", "localhost", "[::1]:8080", "kai.example.org", "KAI.example.org:8080"] {
            assert!(host_allowed(host, &allowed, 8080), "{host}");
        }
        for host in
            ["attacker.example", "attacker.example:8080", "127.0.0.1:8081", "", "10.0.0.1:8080", "localhost.attacker.example", "::1"]
        {
            assert!(!host_allowed(host, &allowed, 8080), "{host}");
        }
        let every = allowed_hosts(&"0.0.0.0:8080".parse().unwrap(), &[], "build01");
        assert!(host_allowed("10.0.0.1:8080", &every, 8080) && host_allowed("build01:8080", &every, 8080));
        assert!(!host_allowed("attacker.example:8080", &every, 8080));
    }

    #[test]
    fn a_token_comes_as_bearer_or_as_the_basic_auth_password() {
        assert_eq!(presented("Bearer s3cret").as_deref(), Some("s3cret"));
        // "team:s3cret"
        assert_eq!(presented("Basic dGVhbTpzM2NyZXQ=").as_deref(), Some("s3cret"));
        assert_eq!(presented("Digest x"), None);
        // Not base64, and not UTF-8 once decoded ("\xff\xfe").
        assert_eq!(presented("Basic !!!"), None);
        assert_eq!(presented("Basic //4="), None);
        // No colon: all of it is the token ("s3cret").
        assert_eq!(presented("Basic czNjcmV0").as_deref(), Some("s3cret"));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }

    #[test]
    fn the_refresh_is_a_duration_of_a_second_or_more() {
        assert_eq!(parse_refresh("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_refresh("10ms").is_err() && parse_refresh("soon").is_err());
    }
}
