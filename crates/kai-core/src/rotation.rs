//! How a server leaves and rejoins the load balancer's rotation, per balancer kind
//! (docs/deploy.md): the steps the planner puts around each server's stop and start.

use crate::config::{App, BalancerKind, Environment};
use crate::haproxy::State;
use crate::httpd::WorkerState;
use crate::ident;
use crate::placement::{app_home, host_vars};
use crate::shell::command::Command;
use crate::step::{Action, Admin, HaproxyOp, HaproxyTarget, HttpdOp, HttpdTarget, Step, StepKind};
use crate::template::{Template, Vars};

/// A balancer name (`backend`, `server`) that renders to something kai cannot send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{env}: the balancer's {key} name {name:?} is not usable: {problem}")]
pub struct BalancerNameError {
    pub env: String,
    pub key: String,
    pub name: String,
    pub problem: String,
}

/// The balancer of one app in one environment.
pub struct Rotation<'a> {
    pub environment: &'a Environment,
    pub app: &'a App,
    pub version: &'a str,
}

impl Rotation<'_> {
    pub fn render(&self, template: &Template, host: &str) -> String {
        let home = app_home(&self.environment.hosts[host], self.app);
        template.render(&host_vars(self.environment, self.app, host, self.version, &home))
    }

    /// How the balancer names `host` in its list: HAProxy's server name, httpd's worker
    /// URL. The all-but-one guard counts these.
    pub fn member(&self, host: &str) -> Result<String, BalancerNameError> {
        match self.environment.balancer.kind {
            BalancerKind::Httpd => Ok(self.worker_url(host)),
            _ => self.server_name(host),
        }
    }

    /// The worker URL of `host` in httpd (`[balancer] worker`).
    pub fn worker_url(&self, host: &str) -> String {
        self.environment.balancer.worker.as_ref().map(|w| self.render(w, host)).unwrap_or_default()
    }

    /// The server's name in the balancer (`[balancer] server`, default `{host}`).
    pub fn server_name(&self, host: &str) -> Result<String, BalancerNameError> {
        self.checked_name(&self.environment.balancer.server, host, "server")
    }

    fn checked_name(&self, template: &Template, host: &str, key: &str) -> Result<String, BalancerNameError> {
        let name = self.render(template, host);
        match ident::problem(&name) {
            None => Ok(name),
            Some(problem) => Err(BalancerNameError { env: self.environment.name.clone(), key: key.into(), name, problem }),
        }
    }

    /// The server of `host` in HAProxy, with where to reach HAProxy.
    pub fn haproxy_target(&self, host: &str) -> Result<HaproxyTarget, BalancerNameError> {
        let balancer = &self.environment.balancer;
        Ok(HaproxyTarget {
            admin: self.admin(),
            backend: self.checked_name(&balancer.backend, host, "backend")?,
            server: self.server_name(host)?,
        })
    }

    /// The worker of `host` in httpd, with every proxy's balancer-manager page.
    pub fn httpd_target(&self, host: &str) -> Result<HttpdTarget, BalancerNameError> {
        let balancer = &self.environment.balancer;
        let manager = balancer.manager.clone().unwrap_or_else(|| Template::literal(""));
        let managers = balancer
            .proxies
            .iter()
            .map(|proxy| {
                let address = self.environment.hosts.get(proxy).map_or(proxy.as_str(), |h| h.address.as_str());
                let vars = Vars {
                    app: &self.app.name,
                    env: &self.environment.name,
                    host: proxy,
                    address,
                    version: self.version,
                    home: "",
                    secrets: None,
                };
                manager.render(&vars)
            })
            .collect();
        let worker = balancer.worker.clone().unwrap_or_else(|| Template::literal(""));
        Ok(HttpdTarget { managers, balancer: self.checked_name(&balancer.backend, host, "backend")?, worker: self.render(&worker, host) })
    }

    /// `unix:PATH` on every proxy, or `tcp:ADDRESS:PORT` where ADDRESS may be
    /// `{proxy}` (each proxy's address), a host name, or a literal address.
    pub fn admin(&self) -> Admin {
        let balancer = &self.environment.balancer;
        let admin = balancer.admin.as_deref().unwrap_or_default();
        if let Some(path) = admin.strip_prefix("unix:") {
            return Admin::Unix { proxies: balancer.proxies.clone(), path: path.to_owned() };
        }
        let target = admin.strip_prefix("tcp:").unwrap_or(admin);
        let (address, port) = target.rsplit_once(':').unwrap_or((target, ""));
        let address_of = |name: &str| self.environment.hosts.get(name).map_or_else(|| name.to_owned(), |h| h.address.clone());
        let addresses = if address == "{proxy}" {
            balancer.proxies.iter().map(|p| format!("{}:{port}", address_of(p))).collect()
        } else {
            vec![format!("{}:{port}", address_of(address))]
        };
        Admin::Tcp { addresses }
    }

    /// Before the server stops: out of rotation, after checking that the servers of
    /// `guard` (counted in rotation at the start, less this wave) still are; no
    /// guard for a server that was not in rotation.
    pub fn take_out(&self, host: &str, guard: Option<&[String]>) -> Result<Vec<Step>, BalancerNameError> {
        let balancer = &self.environment.balancer;
        let timeout = balancer.drain_timeout;
        Ok(match balancer.kind {
            BalancerKind::None => Vec::new(),
            BalancerKind::HealthFile => {
                vec![
                    Step::run(StepKind::Drain, Command::new(["touch", "disabled"])),
                    Step::new(StepKind::Drain, Action::Wait(balancer.drain_wait)),
                ]
            }
            BalancerKind::Command => self.commands(&balancer.drain_command, host, StepKind::Drain),
            BalancerKind::Haproxy => {
                let target = self.haproxy_target(host)?;
                let op = |op: HaproxyOp| Action::Haproxy { target: target.clone(), op };
                let mut steps = Vec::new();
                if let Some(others) = guard {
                    steps.push(Step::new(StepKind::Guard, op(HaproxyOp::Guard { others: others.to_vec(), timeout })));
                }
                steps.extend([
                    Step::new(StepKind::Drain, op(HaproxyOp::Set(State::Drain))),
                    Step::new(StepKind::Drain, op(HaproxyOp::WaitDrained { timeout })),
                    Step::new(StepKind::Drain, op(HaproxyOp::Set(State::Maint))),
                ]);
                steps
            }
            BalancerKind::Httpd => {
                let target = self.httpd_target(host)?;
                let op = |op: HttpdOp| Action::Httpd { target: target.clone(), op };
                let mut steps = Vec::new();
                if let Some(others) = guard {
                    steps.push(Step::new(StepKind::Guard, op(HttpdOp::Guard { others: others.to_vec(), timeout })));
                }
                steps.extend([
                    Step::new(StepKind::Drain, op(HttpdOp::Set(WorkerState::Drain))),
                    Step::new(StepKind::Drain, op(HttpdOp::WaitDrained { timeout })),
                    Step::new(StepKind::Drain, op(HttpdOp::Set(WorkerState::Disabled))),
                ]);
                steps
            }
        })
    }

    /// After the server is ready: back in rotation.
    pub fn put_back(&self, host: &str) -> Result<Vec<Step>, BalancerNameError> {
        let balancer = &self.environment.balancer;
        Ok(match balancer.kind {
            BalancerKind::None => Vec::new(),
            BalancerKind::HealthFile => {
                vec![
                    Step::run(StepKind::Undrain, Command::new(["rm", "-f", "disabled"])),
                    Step::new(StepKind::Undrain, Action::Wait(balancer.settle)),
                ]
            }
            BalancerKind::Command => self.commands(&balancer.undrain_command, host, StepKind::Undrain),
            BalancerKind::Haproxy => {
                let target = self.haproxy_target(host)?;
                let op = |op: HaproxyOp| Action::Haproxy { target: target.clone(), op };
                vec![
                    Step::new(StepKind::Undrain, op(HaproxyOp::Set(State::Drain))),
                    Step::new(StepKind::Undrain, op(HaproxyOp::WaitChecked { timeout: balancer.drain_timeout })),
                    Step::new(StepKind::Undrain, op(HaproxyOp::Set(State::Ready))),
                ]
            }
            BalancerKind::Httpd => {
                let target = self.httpd_target(host)?;
                let op = |op: HttpdOp| Action::Httpd { target: target.clone(), op };
                let mut steps =
                    if balancer.reload.is_empty() { Vec::new() } else { self.commands(&balancer.reload, host, StepKind::Undrain) };
                steps.extend([
                    Step::new(StepKind::Undrain, op(HttpdOp::Set(WorkerState::Enabled))),
                    Step::new(StepKind::Undrain, op(HttpdOp::WaitUsable { timeout: balancer.drain_timeout })),
                ]);
                steps
            }
        })
    }

    /// A balancer's command for `host` (a `command` balancer's, httpd's reload): on every
    /// proxy, one after the other, or on the host itself.
    fn commands(&self, words: &[Template], host: &str, label: StepKind) -> Vec<Step> {
        let command = Command::new(words.iter().map(|w| self.render(w, host)));
        let balancer_limit = self.environment.balancer.drain_timeout;
        let proxies = &self.environment.balancer.proxies;
        if proxies.is_empty() {
            vec![Step::run(label, command).limit(balancer_limit)]
        } else {
            proxies
                .iter()
                .map(|p| Step::new(label, Action::RunOn { host: p.clone(), command: command.clone() }).limit(balancer_limit))
                .collect()
        }
    }
}
