//! Talking to load balancers: HAProxy's runtime API over a unix socket on each proxy
//! host (through the transport, with `socat`) or over TCP from here; reading which
//! servers are in rotation. Decisions stay in `kai_core::haproxy` and the planner.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use kai_core::command::Command;
use kai_core::config::{App, BalancerKind, Environment};
use kai_core::facts::HostFacts;
use kai_core::haproxy::{self, ServerStat};
use kai_core::rotation::Rotation;
use kai_core::step::{Admin, HaproxyOp, HaproxyTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::transport::{Place, Transport};

const POLL: Duration = Duration::from_millis(200);
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The proxies of one environment, reached through `transport`.
pub struct Balancer<'a, T> {
    pub transport: &'a T,
    pub proxies: BTreeMap<String, Place>,
}

impl<'a, T: Transport> Balancer<'a, T> {
    pub fn new(transport: &'a T, environment: &Environment) -> Self {
        let proxies = environment.balancer.proxies.iter().map(|p| (p.clone(), Place::bare(p))).collect();
        Balancer { transport, proxies }
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
    async fn stats(&self, admin: &Admin, backend: &str) -> Result<Vec<Vec<ServerStat>>, String> {
        let answers = self.send(admin, &haproxy::show_stat(backend)).await?;
        answers.iter().map(|a| haproxy::parse_stat(a)).collect()
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

    /// Polls `show stat` until `done` holds on every proxy.
    async fn wait(
        &self,
        target: &HaproxyTarget,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[ServerStat]) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats(&target.admin, &target.backend).await?;
            if stats.iter().all(|s| done(s)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> =
                    stats.iter().flatten().map(|s| format!("{} {} (sessions {})", s.server, s.status, s.scur)).collect();
                return Err(format!("no {what} within {} (HAProxy shows: {})", humantime::format_duration(timeout), seen.join(", ")));
            }
            tokio::time::sleep(POLL).await;
        }
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
                for (host, f) in facts.iter_mut() {
                    let name = rotation.server_name(host).map_err(|e| e.to_string())?;
                    f.in_rotation = Some(stats.iter().all(|s| server(s, &name).is_some_and(ServerStat::in_rotation)));
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
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(IO_TIMEOUT, work).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("HAProxy at {address}: {e}")),
        Err(_) => Err(format!("HAProxy at {address}: no answer within {} s", IO_TIMEOUT.as_secs())),
    }
}
