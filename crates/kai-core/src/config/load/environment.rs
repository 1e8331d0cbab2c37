//! `environments/<env>.toml`: hosts, transport, rollout, canary, where secrets come from.

use super::*;
use crate::config::SecretSource;

/// The environments that loaded, and the names of those whose files could not be read
/// at all (references to them are not reported as unknown).
pub(super) struct Envs {
    pub(super) loaded: BTreeMap<String, Environment>,
    pub(super) broken: BTreeSet<String>,
    /// Per environment, the hosts whose entries had a problem (reported there): left
    /// out of it, and not reported unknown where they are named.
    pub(super) broken_hosts: BTreeMap<String, BTreeSet<String>>,
}

pub(super) fn load_environments(files: &[SourceFile], root: &Path, errors: &mut Vec<ConfigError>) -> Envs {
    let mut envs = Envs { loaded: BTreeMap::new(), broken: BTreeSet::new(), broken_hosts: BTreeMap::new() };
    for file in files {
        let name = name_from_file(file, "environment", errors);
        let mut ctx = FileCtx::new(file, errors);
        match ctx.parse::<RawEnvironment>() {
            Some(raw) => {
                let broken =
                    ctx.blanked.iter().filter_map(|k| k.strip_prefix("hosts.")).map(|k| k.split('.').next().unwrap_or(k).to_owned());
                let broken: BTreeSet<String> = broken.collect();
                let env = environment(&mut ctx, &name, &raw, root, &broken);
                envs.broken_hosts.insert(name.clone(), broken);
                envs.loaded.insert(name, env);
            }
            None => {
                envs.broken.insert(name);
            }
        }
    }
    envs
}

/// The file stem, which names the environment or app; an invalid one is reported
/// (and still returned, so the file's contents are checked too).
pub(super) fn name_from_file(file: &SourceFile, what: &str, errors: &mut Vec<ConfigError>) -> String {
    let stem = file.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(problem) = ident::problem(&stem) {
        let message = format!("invalid {what} name {stem:?} (taken from the file name): {problem}");
        let hint = "rename the file: a name starts with a letter or digit, then letters, digits, '.', '_', '+', '-'";
        errors.push(ConfigError::new(&file.path, message).with_hint(hint));
    }
    stem
}

pub(super) fn environment(
    ctx: &mut FileCtx<'_>,
    name: &str,
    raw: &RawEnvironment,
    root: &Path,
    broken_hosts: &BTreeSet<String>,
) -> Environment {
    let transport_choices = [("ssh", TransportKind::Ssh), ("local", TransportKind::Local)];
    let transport = choice(ctx, raw.transport.as_ref(), "transport", &transport_choices, TransportKind::Ssh);
    let hosts = hosts(ctx, &raw.hosts, transport, root);
    let environment = Environment {
        secrets: Default::default(),
        name: name.to_owned(),
        protected: raw.protected,
        allow_local: raw.allow_local,
        transport,
        ssh_config: raw.ssh_config.as_ref().map(|p| repo_path(ctx, p, "ssh_config", root)),
        known_hosts: raw.known_hosts.as_ref().map(|p| repo_path(ctx, p, "known_hosts", root)),
        ssh_persist: duration(ctx, raw.ssh_persist.as_ref(), "ssh_persist", crate::config::SSH_PERSIST),
        rollout: raw.rollout.as_ref().map(|r| rollout(ctx, r, "rollout")).unwrap_or_default(),
        on_failure: on_failure(ctx, raw.on_failure.as_ref(), "on_failure").unwrap_or_default(),
        canary: raw.canary.as_ref().map(|c| canary(ctx, c.get_ref())),
        balancer: raw.balancer.as_ref().map(|b| balancer::balancer(ctx, b, name, &hosts, broken_hosts)).unwrap_or_default(),
        notify: raw.notify.as_ref().map(|n| notify(ctx, n, "notify")),
        secret_source: raw.secrets.as_ref().map(|s| secret_source(ctx, s)).unwrap_or_default(),
        hosts,
    };
    if let (Some(raw), Some(canary)) = (&raw.canary, &environment.canary) {
        canary_judge(ctx, raw, canary, &environment);
    }
    environment
}

/// `[secrets]`: a command (its words may use `{env}` and `{name}`, and must use
/// `{name}`), else the environment's age file.
fn secret_source(ctx: &mut FileCtx<'_>, raw: &RawSecrets) -> SecretSource {
    let Some(line) = &raw.command else {
        if let Some(timeout) = &raw.timeout {
            ctx.error(&timeout.span(), "secrets.timeout", "a timeout is for a secrets command: set secrets.command too");
        }
        return SecretSource::File;
    };
    let argv = command(ctx, line, "secrets.command");
    let placeholders = argv.iter().flat_map(|w| w.match_indices('{').map(move |(i, _)| &w[i..]));
    for rest in placeholders {
        if !(rest.starts_with("{env}") || rest.starts_with("{name}")) {
            let shown: String = rest.chars().take_while(|c| *c != '}').chain(std::iter::once('}')).collect();
            ctx.error(
                &line.span(),
                "secrets.command",
                format!("unknown placeholder {shown} (a secrets command knows {{env}} and {{name}})"),
            );
        }
    }
    if !argv.is_empty() && !argv.iter().any(|w| w.contains("{name}")) {
        let hint = Some("like command = \"pass show kai/{env}/{name}\"".to_owned());
        ctx.error_hint(&line.span(), "secrets.command", "the command must say which secret it prints: put {name} in it", hint);
    }
    let timeout = duration(ctx, raw.timeout.as_ref(), "secrets.timeout", crate::config::SECRET_COMMAND_TIMEOUT);
    SecretSource::Command { argv, timeout }
}

/// A canary is judged by HAProxy's counters, or by a `judge_command`.
pub(super) fn canary_judge(ctx: &mut FileCtx<'_>, raw: &Spanned<RawCanary>, canary: &Canary, environment: &Environment) {
    if canary.judge_command.is_empty() && environment.balancer.kind != BalancerKind::Haproxy {
        let message =
            format!("a canary is judged by HAProxy's counters, and environment {} has no kind = \"haproxy\" balancer", environment.name);
        let hint = "use HAProxy in [balancer], or set judge_command = \"...\" (it runs here; exit 0 means good)".to_owned();
        ctx.error_hint(&raw.span(), "canary", message, Some(hint));
    }
}

/// A file named relative to the configuration repository.
pub(super) fn repo_path(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str, root: &Path) -> PathBuf {
    if value.get_ref().trim().is_empty() {
        ctx.error(&value.span(), key, "expected a path relative to the configuration repository, found nothing");
    }
    resolve(root, value.get_ref())
}

pub(super) fn rollout(ctx: &mut FileCtx<'_>, raw: &RawRollout, key: &str) -> RolloutPolicy {
    let batch = raw.batch.as_ref().and_then(|b| batch(ctx, b, &format!("{key}.batch")));
    RolloutPolicy { batch: batch.unwrap_or(Batch::Count(1)), canary: raw.canary }
}

pub(super) fn batch(ctx: &mut FileCtx<'_>, raw: &Spanned<RawBatch>, key: &str) -> Option<Batch> {
    let parsed = match raw.get_ref() {
        RawBatch::Count(n) => u32::try_from(*n).ok().filter(|&n| n >= 1).map(Batch::Count),
        RawBatch::Text(text) => {
            text.trim().strip_suffix('%').and_then(|p| p.trim().parse::<u32>().ok()).filter(|p| (1..=100).contains(p)).map(Batch::Percent)
        }
    };
    if parsed.is_none() {
        let found = match raw.get_ref() {
            RawBatch::Count(n) => n.to_string(),
            RawBatch::Text(text) => format!("{text:?}"),
        };
        let message = format!("expected a number of servers (1 or more) or a percentage like \"25%\" (1% to 100%), found {found}");
        ctx.error(&raw.span(), key, message);
    }
    parsed
}

/// `[canary]`, each key checked; what kai does without it is [`crate::canary::Policy`]'s
/// default.
pub(super) fn canary(ctx: &mut FileCtx<'_>, raw: &RawCanary) -> Canary {
    let fallback = crate::canary::Policy::default();
    let hosts = raw.hosts.as_ref().and_then(|b| batch(ctx, b, "canary.hosts")).unwrap_or(Batch::Count(1));
    let whole = |ctx: &mut FileCtx<'_>, raw: Option<&Spanned<i64>>, key: &str, default: u64, least: i64| match raw {
        None => default,
        Some(n) if *n.get_ref() >= least => u64::try_from(*n.get_ref()).unwrap_or(default),
        Some(n) => {
            ctx.error(&n.span(), key, format!("expected a whole number of at least {least}, found {}", n.get_ref()));
            default
        }
    };
    let factor = |ctx: &mut FileCtx<'_>, raw: Option<&Spanned<f64>>, key: &str, default: f64| match raw {
        None => default,
        Some(x) if x.get_ref().is_finite() && *x.get_ref() >= 1.0 => *x.get_ref(),
        Some(x) => {
            ctx.error(&x.span(), key, format!("expected a factor of at least 1.0, like 2.0, found {}", x.get_ref()));
            default
        }
    };
    let error_margin = match &raw.error_margin {
        None => fallback.error_margin,
        Some(text) => match text.get_ref().trim().strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()) {
            Some(p) if (0.0..=100.0).contains(&p) => p / 100.0,
            _ => {
                ctx.error(&text.span(), "canary.error_margin", format!("expected a percentage like \"1%\", found {:?}", text.get_ref()));
                fallback.error_margin
            }
        },
    };
    let margin = duration(ctx, raw.slowdown_margin.as_ref(), "canary.slowdown_margin", Duration::from_millis(5));
    let low = [("pass", LowTraffic::Pass), ("fail", LowTraffic::Fail), ("wait", LowTraffic::Wait)];
    let window = duration(ctx, raw.window.as_ref(), "canary.window", fallback.window);
    if window.is_zero() {
        if let Some(w) = &raw.window {
            ctx.error(&w.span(), "canary.window", "expected a window of at least 1s, like \"60s\"");
        }
    }
    let judge_command = match &raw.judge_command {
        None => Vec::new(),
        Some(raw) => match split_command_line(raw.get_ref()) {
            Ok(words) if !words.is_empty() => {
                words.iter().filter_map(|w| template(ctx, &Spanned::new(raw.span(), w.clone()), "canary.judge_command")).collect()
            }
            Ok(_) => {
                ctx.error(&raw.span(), "canary.judge_command", "expected a command, found nothing");
                Vec::new()
            }
            Err(problem) => {
                ctx.error(&raw.span(), "canary.judge_command", format!("expected a program with arguments: {problem}"));
                Vec::new()
            }
        },
    };
    Canary {
        hosts,
        policy: crate::canary::Policy {
            window,
            min_requests: whole(ctx, raw.min_requests.as_ref(), "canary.min_requests", fallback.min_requests, 0),
            error_factor: factor(ctx, raw.error_factor.as_ref(), "canary.error_factor", fallback.error_factor),
            error_margin,
            slowdown: factor(ctx, raw.slowdown.as_ref(), "canary.slowdown", fallback.slowdown),
            slowdown_margin_ms: margin.as_secs_f64() * 1000.0,
            on_low_traffic: choice(ctx, raw.on_low_traffic.as_ref(), "canary.on_low_traffic", &low, fallback.on_low_traffic),
            max_windows: u32::try_from(whole(ctx, raw.max_windows.as_ref(), "canary.max_windows", u64::from(fallback.max_windows), 1))
                .unwrap_or(fallback.max_windows),
        },
        judge_command,
    }
}

pub(super) fn on_failure(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<String>>, key: &str) -> Option<OnFailure> {
    let raw = raw?;
    let choices = [("rollback", Some(OnFailure::Rollback)), ("halt", Some(OnFailure::Halt))];
    choice(ctx, Some(raw), key, &choices, None)
}

pub(super) fn hosts(
    ctx: &mut FileCtx<'_>,
    raw: &Spanned<BTreeMap<Spanned<String>, Spanned<RawHost>>>,
    transport: TransportKind,
    root: &Path,
) -> BTreeMap<String, Host> {
    if raw.get_ref().is_empty() {
        ctx.error(&raw.span(), "hosts", "expected at least one host, like app01 = \"app01.example.org\"");
    }
    raw.get_ref().iter().map(|(name, value)| (name.get_ref().clone(), host(ctx, name, value, transport, root))).collect()
}

pub(super) fn host(ctx: &mut FileCtx<'_>, name: &Spanned<String>, raw: &Spanned<RawHost>, transport: TransportKind, root: &Path) -> Host {
    let key = format!("hosts.{}", key_part(name.get_ref()));
    identifier(ctx, name, &key, "host name");
    let mut host = Host { name: name.get_ref().clone(), address: String::new(), port: None, login: None, root: None };
    let root_value = match raw.get_ref() {
        RawHost::Address(address) => {
            host.address = address_of(ctx, &Spanned::new(raw.span(), address.clone()), &key);
            None
        }
        RawHost::Table(table) => {
            host.address = address_of(ctx, &table.address, &format!("{key}.address"));
            host.port = table.port.as_ref().map(|p| port(ctx, p, &format!("{key}.port")));
            if let Some(login) = &table.login {
                identifier(ctx, login, &format!("{key}.login"), "login");
                host.login = Some(login.get_ref().clone());
            }
            table.root.as_ref()
        }
    };
    host.root = host_root(ctx, root_value, &key, name.get_ref(), transport, root);
    host
}

pub(super) fn address_of(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) -> String {
    let s = value.get_ref();
    let valid = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '%'));
    if !valid {
        let message = format!("expected a host name or IP address (letters, digits, '.', '-', '_', ':', '[', ']'), found {s:?}");
        ctx.error(&value.span(), key, message);
    }
    s.clone()
}

pub(super) fn port(ctx: &mut FileCtx<'_>, value: &Spanned<u16>, key: &str) -> u16 {
    if *value.get_ref() == 0 {
        ctx.error(&value.span(), key, "expected a port from 1 to 65535, found 0");
    }
    *value.get_ref()
}

/// Local hosts live under `<config root>/.kai/hosts/<host>` unless `root` says otherwise
/// (relative to the configuration root); a remote `root` must be absolute.
pub(super) fn host_root(
    ctx: &mut FileCtx<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    name: &str,
    transport: TransportKind,
    root: &Path,
) -> Option<String> {
    let key = format!("{key}.root");
    if let Some(value) = value.filter(|v| v.get_ref().trim().is_empty()) {
        ctx.error(&value.span(), &key, "expected a path, found nothing");
    }
    let path = match (transport, value) {
        (TransportKind::Ssh, None) => return None,
        (TransportKind::Ssh, Some(value)) => {
            if !value.get_ref().starts_with('/') {
                ctx.error(&value.span(), &key, format!("expected an absolute path on the host, found {:?}", value.get_ref()));
            }
            return Some(value.get_ref().clone());
        }
        (TransportKind::Local, Some(value)) => resolve(root, value.get_ref()),
        (TransportKind::Local, None) => resolve(root, &format!(".kai/hosts/{name}")),
    };
    if path.to_str().is_none() {
        ctx.missing(&key, format!("the local host folder {} is not valid UTF-8", path.display()), "set `root` to a UTF-8 path");
    }
    Some(path.to_string_lossy().into_owned())
}
