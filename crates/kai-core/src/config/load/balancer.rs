//! An environment's `[balancer]`: HAProxy, httpd, a command, a health file.

use super::*;

pub(super) fn balancer(
    ctx: &mut FileCtx<'_>,
    raw: &RawBalancer,
    env: &str,
    hosts: &BTreeMap<String, Host>,
    broken_hosts: &BTreeSet<String>,
) -> Balancer {
    let fallback = Balancer::default();
    let kinds = [
        ("haproxy", BalancerKind::Haproxy),
        ("httpd", BalancerKind::Httpd),
        ("health-file", BalancerKind::HealthFile),
        ("command", BalancerKind::Command),
        ("none", BalancerKind::None),
    ];
    let kind = choice(ctx, raw.kind.as_ref(), "balancer.kind", &kinds, BalancerKind::None);
    let known: Vec<&str> = hosts.keys().map(String::as_str).collect();
    for proxy in &raw.proxies {
        if !hosts.contains_key(proxy.get_ref()) && !broken_hosts.contains(proxy.get_ref()) {
            let (message, hint) = unknown_name("host", proxy.get_ref(), &format!(" in environment {env}"), &known);
            ctx.error_hint(&proxy.span(), "balancer.proxies", message, hint);
        }
    }
    if let Some(admin) = &raw.admin {
        balancer_admin(ctx, admin, kind);
    }
    if kind == BalancerKind::Haproxy {
        haproxy_needs(ctx, raw);
    }
    let httpd = httpd_keys(ctx, raw, kind);
    let command =
        |ctx: &mut FileCtx<'_>, raw: Option<&Spanned<String>>, key: &str| balancer_command(ctx, raw, key, kind, BalancerKind::Command);
    let drain_command = command(ctx, raw.drain_command.as_ref(), "balancer.drain_command");
    let undrain_command = command(ctx, raw.undrain_command.as_ref(), "balancer.undrain_command");
    let reload = balancer_command(ctx, raw.reload.as_ref(), "balancer.reload", kind, BalancerKind::Httpd);
    if kind == BalancerKind::Command && (drain_command.is_empty() || undrain_command.is_empty()) {
        let span = raw.kind.as_ref().map(Spanned::span).unwrap_or_default();
        let message =
            "kind = \"command\" needs `drain_command` and `undrain_command`, like drain_command = \"/usr/local/bin/lb-drain {host}\"";
        ctx.error(&span, "balancer.drain_command", message);
    }
    Balancer {
        drain_timeout: duration(ctx, raw.drain_timeout.as_ref(), "balancer.drain_timeout", fallback.drain_timeout),
        drain_command,
        undrain_command,
        kind,
        proxies: raw.proxies.iter().map(|p| p.get_ref().clone()).collect(),
        admin: raw.admin.as_ref().map(|a| a.get_ref().clone()),
        backend: pool_name(ctx, raw, kind).unwrap_or(fallback.backend),
        server: raw.server.as_ref().and_then(|t| template(ctx, t, "balancer.server")).unwrap_or(fallback.server),
        drain_wait: duration(ctx, raw.drain_wait.as_ref(), "balancer.drain_wait", fallback.drain_wait),
        settle: duration(ctx, raw.settle.as_ref(), "balancer.settle", fallback.settle),
        manager: httpd.manager,
        worker: httpd.worker,
        username_env: httpd.username_env,
        password_env: httpd.password_env,
        reload,
    }
}

/// The keys only an httpd balancer has.
pub(super) struct HttpdKeys {
    pub(super) manager: Option<Template>,
    pub(super) worker: Option<Template>,
    pub(super) username_env: Option<String>,
    pub(super) password_env: Option<String>,
}

/// `manager` and `worker` (both needed for httpd) and the manager's credentials; each
/// an error with another kind.
/// The app's pool in the balancer: HAProxy's `backend`, httpd's `balancer` (httpd also
/// takes `backend`, as HAProxy's name for the same thing, but not both).
pub(super) fn pool_name(ctx: &mut FileCtx<'_>, raw: &RawBalancer, kind: BalancerKind) -> Option<Template> {
    match (&raw.backend, &raw.balancer) {
        (Some(_), Some(second)) if kind == BalancerKind::Httpd => {
            ctx.error(&second.span(), "balancer.balancer", "`balancer` and `backend` name the same pool: keep one");
            None
        }
        (_, Some(name)) if kind != BalancerKind::Httpd => {
            ctx.error(&name.span(), "balancer.balancer", "`balancer` is only used with kind = \"httpd\" (HAProxy's pool is `backend`)");
            None
        }
        (_, Some(name)) => template(ctx, name, "balancer.balancer"),
        (Some(backend), None) => template(ctx, backend, "balancer.backend"),
        (None, None) => None,
    }
}

pub(super) fn httpd_keys(ctx: &mut FileCtx<'_>, raw: &RawBalancer, kind: BalancerKind) -> HttpdKeys {
    let keys =
        [("manager", &raw.manager), ("worker", &raw.worker), ("username_env", &raw.username_env), ("password_env", &raw.password_env)];
    if kind != BalancerKind::Httpd {
        for (key, value) in keys {
            if let Some(value) = value {
                ctx.error(&value.span(), &format!("balancer.{key}"), format!("`{key}` is only used with kind = \"httpd\""));
            }
        }
        return HttpdKeys { manager: None, worker: None, username_env: None, password_env: None };
    }
    let span = raw.kind.as_ref().map(Spanned::span).unwrap_or_default();
    if raw.proxies.is_empty() {
        let message = "kind = \"httpd\" needs `proxies`: the hosts running httpd, like proxies = [\"lb01\"]";
        ctx.error(&span, "balancer.proxies", message);
    }
    let manager = match &raw.manager {
        Some(manager) => {
            let parsed = template(ctx, manager, "balancer.manager");
            let url = manager.get_ref();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let message = format!(
                    "expected the balancer-manager page's http(s) URL, like \"http://{{address}}:8081/balancer-manager\", found {url:?}"
                );
                ctx.error(&manager.span(), "balancer.manager", message);
            }
            parsed
        }
        None => {
            let message = "kind = \"httpd\" needs `manager`, the balancer-manager page of each proxy, like manager = \"http://{address}:8081/balancer-manager\"";
            ctx.error(&span, "balancer.manager", message);
            None
        }
    };
    let worker = match &raw.worker {
        Some(worker) => template(ctx, worker, "balancer.worker"),
        None => {
            let message = "kind = \"httpd\" needs `worker`, an app host's worker URL as the balancer lists it, like worker = \"http://{address}:8080\"";
            ctx.error(&span, "balancer.worker", message);
            None
        }
    };
    let (username_env, password_env) = credentials(ctx, raw.username_env.as_ref(), raw.password_env.as_ref(), "balancer.");
    HttpdKeys { manager, worker, username_env, password_env }
}

/// A `command` balancer's drain or undrain command: words, each a template.
/// A command line of a balancer key that only `only` has.
pub(super) fn balancer_command(
    ctx: &mut FileCtx<'_>,
    raw: Option<&Spanned<String>>,
    key: &str,
    kind: BalancerKind,
    only: BalancerKind,
) -> Vec<Template> {
    let Some(raw) = raw else { return Vec::new() };
    if kind != only {
        let name = match only {
            BalancerKind::Httpd => "httpd",
            _ => "command",
        };
        ctx.error(&raw.span(), key, format!("`{}` is only used with kind = \"{name}\"", key.trim_start_matches("balancer.")));
        return Vec::new();
    }
    match split_command_line(raw.get_ref()) {
        Ok(words) => words.iter().filter_map(|w| template(ctx, &Spanned::new(raw.span(), w.clone()), key)).collect(),
        Err(problem) => {
            ctx.error(&raw.span(), key, format!("expected a program with arguments: {problem}"));
            Vec::new()
        }
    }
}

/// `unix:/PATH` or `tcp:ADDRESS:PORT`, and only for haproxy.
pub(super) fn balancer_admin(ctx: &mut FileCtx<'_>, admin: &Spanned<String>, kind: BalancerKind) {
    if kind != BalancerKind::Haproxy {
        ctx.error(&admin.span(), "balancer.admin", "`admin` is only used with kind = \"haproxy\"");
        return;
    }
    let text = admin.get_ref();
    let valid = if let Some(path) = text.strip_prefix("unix:") {
        path.starts_with('/')
    } else if let Some(target) = text.strip_prefix("tcp:") {
        target.rsplit_once(':').is_some_and(|(address, port)| !address.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
    } else {
        false
    };
    if !valid {
        let message = format!("expected \"unix:/path/to/admin.sock\" or \"tcp:ADDRESS:PORT\" (ADDRESS may be {{proxy}}), found {text:?}");
        ctx.error(&admin.span(), "balancer.admin", message);
    }
}

pub(super) fn haproxy_needs(ctx: &mut FileCtx<'_>, raw: &RawBalancer) {
    let span = raw.kind.as_ref().map(Spanned::span).unwrap_or_default();
    if raw.proxies.is_empty() {
        let message = "kind = \"haproxy\" needs `proxies`: the hosts running HAProxy, like proxies = [\"lb01\"]";
        ctx.error(&span, "balancer.proxies", message);
    }
    if raw.admin.is_none() {
        let message = "kind = \"haproxy\" needs `admin`, like admin = \"unix:/run/haproxy/admin.sock\"";
        ctx.error(&span, "balancer.admin", message);
    }
}
