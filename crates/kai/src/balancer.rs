//! Talking to load balancers: HAProxy's runtime API over a unix socket on each proxy
//! host (through the transport, with `socat`) or over TCP from here; httpd's
//! balancer-manager page over HTTP(S) from here; reading which servers are in
//! rotation. Decisions stay in `kai_core::haproxy`, `kai_core::httpd` and the planner.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use kai_core::config::{App, BalancerKind, Environment};
use kai_core::facts::HostFacts;
use kai_core::haproxy::{self, ServerStat};
use kai_core::httpd::{self, Worker as HttpdWorker, WorkerState};
use kai_core::rotation::Rotation;
use kai_core::shell::command::Command;
use kai_core::step::{Admin, HaproxyOp, HaproxyTarget, HttpdOp, HttpdTarget};
use kai_core::wait::{Missed, Until};
use tokio::io::AsyncWriteExt;

use crate::drive::drive;

use crate::transport::{Place, Transport};

const POLL: Duration = Duration::from_millis(200);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long httpd gets before a change that did not take is tried again (a graceful
/// restart takes about this long to bring up its new children).
const SET_AGAIN_AFTER: Duration = Duration::from_millis(500);
/// Failed reads of the page in a row that make a wait fail.
const READS_BEFORE_ERROR: u32 = 3;

/// The balancer-manager's basic-auth login: none, the user and password, or why the
/// variables named for it cannot be used.
pub type Login = Result<Option<(String, String)>, String>;

/// The login read from the variables the configuration names (`[balancer]
/// username_env`, `password_env`); never echoed.
pub fn login(environment: &Environment, settings: &crate::settings::Settings) -> Login {
    let balancer = &environment.balancer;
    match (&balancer.username_env, &balancer.password_env) {
        (Some(user), Some(password)) => match (settings.var(user), settings.var(password)) {
            (Some(u), Some(p)) if !u.chars().chain(p.chars()).any(char::is_control) => Ok(Some((u.to_owned(), p.to_owned()))),
            (Some(_), Some(_)) => Err(format!("the balancer-manager login in {user}/{password} holds a control character")),
            (None, _) => Err(format!("the environment variable {user} is not set (the balancer-manager's user name)")),
            (_, None) => Err(format!("the environment variable {password} is not set (the balancer-manager's password)")),
        },
        _ => Ok(None),
    }
}

/// The proxies of one environment, reached through `transport`.
pub struct Balancer<'a, T> {
    pub transport: &'a T,
    pub proxies: BTreeMap<String, Place>,
    /// httpd's balancer-manager: the client, and the basic-auth login when the
    /// configuration names one (or why it cannot be had).
    http: reqwest::Client,
    login: Result<Option<(String, String)>, String>,
    /// For a read of many apps ([`Balancer::reading`]): each proxy's answer, asked once
    /// (every backend of a HAProxy, a balancer-manager's whole page) and shared.
    answers: Option<Answers>,
}

/// Answers asked once per read: by the runtime API (its Debug form) or the page's URL.
type Answers = std::sync::Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::OnceCell<Result<Vec<String>, String>>>>>;

impl<'a, T: Transport> Balancer<'a, T> {
    pub fn new(transport: &'a T, environment: &Environment) -> Self {
        let proxies = environment.balancer.proxies.iter().map(|p| (p.clone(), Place::bare(p))).collect();
        // No idle connections: a graceful restart of httpd closes them under the client,
        // and the page is read a few times per server, not thousands.
        let http = reqwest::Client::builder().timeout(IO_TIMEOUT).pool_max_idle_per_host(0).build().unwrap_or_default();
        Balancer { transport, proxies, http, login: Ok(None), answers: None }
    }

    /// For reading many apps at once (`kai status`, `kai serve`): every proxy is asked
    /// once, all its backends (or its whole balancer-manager page), and each app's part
    /// is taken from that answer. Never for a deploy, which reads the balancer afresh.
    #[must_use]
    pub fn reading(mut self) -> Self {
        self.answers = Some(std::sync::Mutex::default());
        self
    }

    /// `ask` once per `key` in a read ([`Balancer::reading`]); every time otherwise.
    async fn once<F>(&self, key: String, ask: F) -> Result<Vec<String>, String>
    where
        F: std::future::Future<Output = Result<Vec<String>, String>>,
    {
        let Some(answers) = &self.answers else { return ask.await };
        let cell = answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_default().clone();
        cell.get_or_init(|| ask).await.clone()
    }

    /// With the balancer-manager's login (see [`login`]).
    #[must_use]
    pub fn with_login(mut self, login: Login) -> Self {
        self.login = login;
        self
    }

    /// The balancer `name` as the page at `manager` shows it.
    async fn httpd_page(&self, manager: &str, name: &str) -> Result<kai_core::httpd::Balancer, String> {
        let page = self.once(format!("page {manager}"), async { self.httpd_text(manager).await.map(|page| vec![page]) }).await?;
        httpd::parse_page(&page[0], name).map_err(|e| format!("httpd at {manager}: {e}"))
    }

    /// The text of the balancer-manager page at `manager`.
    async fn httpd_text(&self, manager: &str) -> Result<String, String> {
        let login = self.login.clone()?;
        let mut request = self.http.get(manager);
        if let Some((user, password)) = &login {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| format!("httpd at {manager}: {}", crate::notify::error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("httpd at {manager} answered {status}"));
        }
        crate::bounded::body(response, crate::bounded::BALANCER, &format!("httpd at {manager}")).await
    }

    /// The balancer of `target` on every proxy.
    async fn httpd_pages(&self, target: &HttpdTarget) -> Result<Vec<kai_core::httpd::Balancer>, String> {
        join_all(target.managers.iter().map(|m| self.httpd_page(m, &target.balancer))).await.into_iter().collect()
    }

    /// Sets the worker's flags on one proxy's page and reads them back; once more when
    /// that did not take (a graceful restart between reading the page and posting the
    /// form gives the page a new nonce, and httpd ignores the post).
    async fn httpd_set(&self, manager: &str, target: &HttpdTarget, state: WorkerState) -> Result<(), String> {
        let mut twice = Until::attempts(SET_AGAIN_AFTER, 2);
        let set =
            drive(&mut twice, &crate::drive::never, async |()| self.httpd_set_once(manager, target, state).await.map(|()| true)).await;
        set.map_err(|missed| match missed {
            Missed::Read(e) => e,
            Missed::TimedOut => format!("httpd at {manager} did not take the change to {state}"),
        })
    }

    /// Sets the worker's flags on one proxy's page, as its own form does (with its
    /// nonce and, as httpd requires, the page as referer), then reads it back.
    async fn httpd_set_once(&self, manager: &str, target: &HttpdTarget, state: WorkerState) -> Result<(), String> {
        let page = self.httpd_page(manager, &target.balancer).await?;
        if page.worker(&target.worker).is_none() {
            let listed: Vec<&str> = page.workers.iter().map(|w| w.url.as_str()).collect();
            return Err(format!(
                "httpd at {manager}: no worker {} in balancer://{} (workers: {})",
                target.worker,
                target.balancer,
                listed.join(", ")
            ));
        }
        let form = httpd::form(&target.balancer, &target.worker, &page.nonce, state);
        let mut request = self.http.post(manager).header(reqwest::header::REFERER, manager).form(&form);
        if let Ok(Some((user, password))) = &self.login {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| format!("httpd at {manager}: {}", crate::notify::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(format!("httpd at {manager} refused the change: {}", response.status()));
        }
        let after = self.httpd_page(manager, &target.balancer).await?;
        let worker = after.worker(&target.worker);
        let applied = worker.is_some_and(|w| w.is(state));
        let worker = worker.map(|w| w.status.clone()).unwrap_or_default();
        if applied {
            Ok(())
        } else {
            Err(format!("httpd at {manager} did not take the change to {state} (worker status {worker:?}); its error log says why"))
        }
    }

    /// Carries out one httpd step.
    pub async fn run_httpd(&self, target: &HttpdTarget, op: &HttpdOp) -> Result<(), String> {
        match op {
            HttpdOp::Set(state) => join_all(target.managers.iter().map(|m| self.httpd_set(m, target, *state))).await.into_iter().collect(),
            HttpdOp::Guard { others, timeout } => {
                let what = format!("{} usable", others.join(", "));
                self.wait_httpd(target, *timeout, &what, |b| others.iter().all(|o| b.worker(o).is_some_and(HttpdWorker::usable))).await
            }
            HttpdOp::WaitDrained { timeout } => {
                let what = format!("{} serving no request", target.worker);
                self.wait_httpd(target, *timeout, &what, |b| b.worker(&target.worker).is_some_and(HttpdWorker::drained)).await
            }
            HttpdOp::WaitUsable { timeout } => {
                let what = format!("{} usable", target.worker);
                self.wait_httpd(target, *timeout, &what, |b| b.worker(&target.worker).is_some_and(HttpdWorker::usable)).await
            }
        }
    }

    /// Reads every proxy's page until `done` holds on each.
    async fn wait_httpd(
        &self,
        target: &HttpdTarget,
        timeout: Duration,
        what: &str,
        done: impl Fn(&kai_core::httpd::Balancer) -> bool,
    ) -> Result<(), String> {
        // A read may fail while httpd restarts gracefully; a few in a row is an error.
        let mut wait = Until::new(Duration::ZERO, timeout, POLL).tolerating(READS_BEFORE_ERROR);
        let mut seen = Vec::new();
        let waited = drive(&mut wait, &crate::drive::never, async |()| {
            let pages = self.httpd_pages(target).await?;
            let holds = pages.iter().all(&done);
            seen = pages.iter().flat_map(|b| &b.workers).map(|w| format!("{} {} (busy {})", w.url, w.status, w.busy)).collect();
            Ok(holds)
        })
        .await;
        waited.map_err(|missed| match missed {
            Missed::Read(e) => e,
            Missed::TimedOut => format!(
                "no {what} in balancer://{} within {} (httpd shows: {})",
                target.balancer,
                humantime::format_duration(timeout),
                seen.join(", ")
            ),
        })
    }

    /// Sends one runtime API command to every proxy; their answers, in order.
    async fn send(&self, admin: &Admin, line: &str) -> Result<Vec<String>, String> {
        match admin {
            Admin::Tcp { addresses } => join_all(addresses.iter().map(|a| tcp(a, line))).await.into_iter().collect(),
            Admin::Unix { proxies, path } => {
                let command = Command::new(["socat", "-t", "5", "stdio", &format!("unix-connect:{path}")]).stdin(format!("{line}\n"));
                let answers = join_all(proxies.iter().map(|p| self.on_proxy(p, &command, IO_TIMEOUT * 2))).await;
                answers.into_iter().collect()
            }
        }
    }

    /// Runs `command` on the proxy host `proxy`, as its login, in a script of its own.
    pub async fn on_proxy(&self, proxy: &str, command: &Command, limit: Duration) -> Result<String, String> {
        let place = self.proxies.get(proxy).ok_or_else(|| format!("{proxy} is not a proxy of this environment"))?;
        let out = crate::transport::send_command(self.transport, place, command, limit).await.map_err(|e| format!("{proxy}: {e}"))?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(format!("{proxy}: `{}` failed: {}", command.to_shell(), out.stderr.trim()))
        }
    }

    /// The servers of `backend` as each proxy sees them.
    pub async fn stats(&self, admin: &Admin, backend: &str) -> Result<Vec<Vec<ServerStat>>, String> {
        if self.answers.is_none() {
            let answers = self.send(admin, &haproxy::show_stat(backend)).await?;
            return answers.iter().map(|a| haproxy::parse_stat(a)).collect();
        }
        let answers = self.once(format!("{admin:?}"), self.send(admin, haproxy::SHOW_ALL_SERVERS)).await?;
        let every: Vec<Vec<ServerStat>> = answers.iter().map(|a| haproxy::parse_stat(a)).collect::<Result<_, _>>()?;
        Ok(every.into_iter().map(|servers| servers.into_iter().filter(|s| s.backend == backend).collect()).collect())
    }

    /// Carries out one HAProxy step.
    pub async fn run(&self, target: &HaproxyTarget, op: &HaproxyOp) -> Result<(), String> {
        match op {
            HaproxyOp::Set(state) => {
                let line = haproxy::set_state(&target.backend, &target.server, *state);
                self.send(&target.admin, &line).await?.iter().try_for_each(|reply| haproxy::check_reply(reply))
            }
            HaproxyOp::Guard { others, timeout } => {
                let what = format!("{} back in rotation", others.join(", "));
                self.wait(target, *timeout, &what, |stats| others.iter().all(|o| server(stats, o).is_some_and(ServerStat::in_rotation)))
                    .await
            }
            HaproxyOp::WaitDrained { timeout } => {
                let what = format!("{}/{} without sessions", target.backend, target.server);
                self.wait(target, *timeout, &what, |stats| server(stats, &target.server).is_some_and(ServerStat::drained)).await
            }
            HaproxyOp::WaitChecked { timeout } => {
                let what = format!("a fresh passed check of {}/{}", target.backend, target.server);
                self.wait(target, *timeout, &what, |stats| server(stats, &target.server).is_some_and(ServerStat::checked)).await
            }
        }
    }

    /// Reads `show stat` until `done` holds on every proxy.
    async fn wait(
        &self,
        target: &HaproxyTarget,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[ServerStat]) -> bool,
    ) -> Result<(), String> {
        let mut wait = Until::new(Duration::ZERO, timeout, POLL);
        let mut seen = Vec::new();
        let waited = drive(&mut wait, &crate::drive::never, async |()| {
            let stats = self.stats(&target.admin, &target.backend).await?;
            seen = stats.iter().flatten().map(|s| format!("{} {} (sessions {})", s.server, s.status, s.scur)).collect();
            Ok(stats.iter().all(|s| done(s)))
        })
        .await;
        waited.map_err(|missed| match missed {
            Missed::Read(e) => e,
            Missed::TimedOut => {
                format!("no {what} within {} (HAProxy shows: {})", humantime::format_duration(timeout), seen.join(", "))
            }
        })
    }

    /// Fills `in_rotation` for every host of the app: from HAProxy (in rotation on
    /// every proxy), or from the `disabled` marker for a health-file balancer.
    pub async fn read_rotation(
        &self,
        environment: &Environment,
        app: &App,
        version: &str,
        facts: &mut BTreeMap<String, HostFacts>,
    ) -> Result<(), String> {
        match environment.balancer.kind {
            BalancerKind::HealthFile => {
                for f in facts.values_mut() {
                    f.in_rotation = Some(!f.disabled);
                }
            }
            BalancerKind::Haproxy => {
                let rotation = Rotation { environment, app, version };
                let Some(host) = facts.keys().next().cloned() else { return Ok(()) };
                let target = rotation.haproxy_target(&host).map_err(|e| e.to_string())?;
                let stats = self.stats(&target.admin, &target.backend).await?;
                if stats.is_empty() || stats.iter().any(Vec::is_empty) {
                    return Err(format!("HAProxy lists no server in backend {}", target.backend));
                }
                for (host, f) in facts.iter_mut() {
                    let name = rotation.server_name(host).map_err(|e| e.to_string())?;
                    f.in_rotation = Some(stats.iter().all(|s| server(s, &name).is_some_and(ServerStat::in_rotation)));
                }
            }
            BalancerKind::Httpd => {
                let rotation = Rotation { environment, app, version };
                let Some(host) = facts.keys().next().cloned() else { return Ok(()) };
                let target = rotation.httpd_target(&host).map_err(|e| e.to_string())?;
                let pages = self.httpd_pages(&target).await?;
                if pages.is_empty() {
                    return Err(format!("no balancer-manager page to read balancer://{}", target.balancer));
                }
                for (host, f) in facts.iter_mut() {
                    let url = rotation.worker_url(host);
                    f.in_rotation = Some(pages.iter().all(|b| b.worker(&url).is_some_and(HttpdWorker::usable)));
                }
            }
            BalancerKind::Command | BalancerKind::None => {}
        }
        Ok(())
    }
}

fn server<'s>(stats: &'s [ServerStat], name: &str) -> Option<&'s ServerStat> {
    stats.iter().find(|s| s.server == name)
}

/// One command over HAProxy's TCP runtime API: it answers and closes.
async fn tcp(address: &str, line: &str) -> Result<String, String> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        crate::bounded::text(stream, crate::bounded::BALANCER).await
    };
    match tokio::time::timeout(IO_TIMEOUT, work).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("HAProxy at {address}: {e}")),
        Err(_) => Err(format!("HAProxy at {address}: no answer within {} s", IO_TIMEOUT.as_secs())),
    }
}
