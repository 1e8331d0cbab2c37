//! `kai.toml`: the repository, the defaults, the notifications.

use super::*;

pub(super) struct KaiToml {
    /// `environments = [...]` as written, each name with its span (checked once the
    /// environment files are loaded: see [`environment_order`]).
    pub(super) environments: Option<Vec<Spanned<String>>>,
    pub(super) repository: RepositoryConfig,
    pub(super) defaults: Defaults,
    pub(super) notify: Option<NotifyConfig>,
}

pub(super) fn load_kai(file: &SourceFile, root: &Path, errors: &mut Vec<ConfigError>) -> Option<KaiToml> {
    let mut ctx = FileCtx::new(file, errors);
    let raw: RawKai = ctx.parse()?;
    Some(KaiToml {
        environments: raw.environments.map(Spanned::into_inner),
        repository: repository(&mut ctx, &raw.repository, root),
        defaults: defaults(&mut ctx, &raw.defaults),
        notify: raw.notify.as_ref().map(|n| notify(&mut ctx, n, "notify")),
    })
}

/// The order environments are listed in: those `environments = [...]` names, in that
/// order, then every other environment alphabetically. A name without its file in
/// `environments/`, or named twice, is an error at its line.
pub(super) fn environment_order(file: &SourceFile, listed: &[Spanned<String>], envs: &Envs, errors: &mut Vec<ConfigError>) -> Vec<String> {
    let mut ctx = FileCtx::new(file, errors);
    let known: Vec<&str> = envs.loaded.keys().chain(envs.broken.iter()).map(String::as_str).collect();
    let mut order: Vec<String> = Vec::new();
    for name in listed {
        let text = name.get_ref();
        if order.contains(text) {
            ctx.error(&name.span(), "environments", format!("{text:?} is listed twice"));
        } else if !known.contains(&text.as_str()) {
            let (message, hint) = unknown_name("environment", text, " (no file environments/<name>.toml)", &known);
            ctx.error_hint(&name.span(), "environments", message, hint);
        } else {
            order.push(text.clone());
        }
    }
    let mut rest: Vec<String> = envs.loaded.keys().filter(|e| !order.contains(e)).cloned().collect();
    rest.sort();
    order.retain(|e| envs.loaded.contains_key(e));
    order.extend(rest);
    order
}

pub(super) fn repository(ctx: &mut FileCtx<'_>, raw: &RawRepository, root: &Path) -> RepositoryConfig {
    if let Some(group) = &raw.group {
        coordinate(ctx, group, "repository.group", "groupId");
    }
    let (username_env, password_env) = credentials(ctx, raw.username_env.as_ref(), raw.password_env.as_ref(), "repository.");
    RepositoryConfig {
        location: repo_location(ctx, &raw.url, root),
        group: raw.group.as_ref().map(|g| g.get_ref().clone()),
        username_env,
        password_env,
        timeout: duration(ctx, raw.timeout.as_ref(), "repository.timeout", REPOSITORY_TIMEOUT),
    }
}

pub(super) fn repo_location(ctx: &mut FileCtx<'_>, url: &Spanned<String>, root: &Path) -> RepoLocation {
    match repository_location(url.get_ref(), root) {
        Ok(location) => location,
        Err((message, location)) => {
            ctx.error(&url.span(), "repository.url", message);
            location
        }
    }
}

/// `[repository] url` as a location: an http(s) URL, or a folder (`file:///abs`, or a
/// path relative to the configuration root). `Err` says what is wrong, with the
/// location the rest of the checks go on with.
pub fn repository_location(url: &str, root: &Path) -> Result<RepoLocation, (String, RepoLocation)> {
    let text = url.trim();
    let expected = "expected an http(s):// URL, file:///absolute/path, or a path relative to the configuration root";
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err((format!("{expected}, found {url:?}"), RepoLocation::Folder(root.to_path_buf())));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(RepoLocation::Http(text.trim_end_matches('/').to_owned()));
    }
    if let Some(path) = text.strip_prefix("file://") {
        let location = RepoLocation::Folder(resolve(root, path));
        if !path.starts_with('/') {
            return Err((format!("{expected}, found {text:?}"), location));
        }
        return Ok(location);
    }
    let location = RepoLocation::Folder(resolve(root, text));
    if text.contains("://") {
        return Err((format!("unsupported URL scheme in {text:?} ({expected})"), location));
    }
    Ok(location)
}

pub(super) fn defaults(ctx: &mut FileCtx<'_>, raw: &RawDefaults) -> Defaults {
    let fallback = Defaults::default();
    let fetch_choices = [("auto", FetchMode::Auto), ("pull", FetchMode::Pull), ("push", FetchMode::Push)];
    Defaults {
        keep_releases: keep_releases(ctx, raw.keep_releases.as_ref()).unwrap_or(fallback.keep_releases),
        fetch: choice(ctx, raw.fetch.as_ref(), "defaults.fetch", &fetch_choices, fallback.fetch),
        health_timeout: duration(ctx, raw.health_timeout.as_ref(), "defaults.health_timeout", fallback.health_timeout),
        start_timeout: duration(ctx, raw.start_timeout.as_ref(), "defaults.start_timeout", fallback.start_timeout),
        stop_timeout: duration(ctx, raw.stop_timeout.as_ref(), "defaults.stop_timeout", fallback.stop_timeout),
        fetch_timeout: duration(ctx, raw.fetch_timeout.as_ref(), "defaults.fetch_timeout", fallback.fetch_timeout),
    }
}

pub(super) fn keep_releases(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<i64>>) -> Option<u32> {
    let raw = raw?;
    match u32::try_from(*raw.get_ref()) {
        Ok(n) if n >= 2 => Some(n),
        _ => {
            let message = format!(
                "expected a whole number of at least 2 (the current release and the one before it are always kept), found {}",
                raw.get_ref()
            );
            ctx.error(&raw.span(), "defaults.keep_releases", message);
            None
        }
    }
}

pub(super) fn notify(ctx: &mut FileCtx<'_>, raw: &RawNotify, prefix: &str) -> NotifyConfig {
    NotifyConfig {
        email: raw.email.as_ref().map(|e| email(ctx, e, &format!("{prefix}.email"))),
        webhook: raw
            .webhook
            .as_ref()
            .map(|w| WebhookNotify { url_env: env_var(ctx, Some(&w.url_env), &format!("{prefix}.webhook.url_env")).unwrap_or_default() }),
    }
}

pub(super) fn email(ctx: &mut FileCtx<'_>, raw: &RawEmail, prefix: &str) -> EmailNotify {
    let tls_choices = [("starttls", SmtpTls::Starttls), ("implicit", SmtpTls::Implicit), ("none", SmtpTls::None)];
    let tls = choice(ctx, raw.tls.as_ref(), &format!("{prefix}.tls"), &tls_choices, SmtpTls::Starttls);
    smtp_server(ctx, &raw.smtp, tls, prefix);
    mail_address(ctx, &raw.from, &format!("{prefix}.from"));
    if raw.to.get_ref().is_empty() {
        ctx.error(&raw.to.span(), &format!("{prefix}.to"), "expected at least one address");
    }
    for to in raw.to.get_ref() {
        mail_address(ctx, to, &format!("{prefix}.to"));
    }
    let (username_env, password_env) = credentials(ctx, raw.username_env.as_ref(), raw.password_env.as_ref(), &format!("{prefix}."));
    EmailNotify {
        smtp: raw.smtp.get_ref().clone(),
        tls,
        from: raw.from.get_ref().clone(),
        to: raw.to.get_ref().iter().map(|t| t.get_ref().clone()).collect(),
        username_env,
        password_env,
    }
}

/// `host:port`; `tls = "none"` only towards a loopback server.
pub(super) fn smtp_server(ctx: &mut FileCtx<'_>, smtp: &Spanned<String>, tls: SmtpTls, prefix: &str) {
    let key = format!("{prefix}.smtp");
    let Some((host, port)) = smtp.get_ref().rsplit_once(':') else {
        ctx.error(&smtp.span(), &key, format!("expected host:port like \"smtp.example.org:587\", found {:?}", smtp.get_ref()));
        return;
    };
    let host_ok = !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control());
    if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
        ctx.error(&smtp.span(), &key, format!("expected host:port like \"smtp.example.org:587\", found {:?}", smtp.get_ref()));
        return;
    }
    let loopback = matches!(host, "localhost" | "::1" | "[::1]") || host.starts_with("127.");
    if tls == SmtpTls::None && !loopback {
        let hint = "use tls = \"starttls\" (port 587) or \"implicit\" (port 465)".to_owned();
        ctx.error_hint(&smtp.span(), &key, format!("tls = \"none\" is only allowed for a loopback server, not {host:?}"), Some(hint));
    }
}

pub(super) fn mail_address(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) {
    let s = value.get_ref();
    if !s.contains('@') || s.chars().any(char::is_control) {
        ctx.error(&value.span(), key, format!("expected an email address like \"ops@example.org\", found {s:?}"));
    }
}
