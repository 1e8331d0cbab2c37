//! `apps/<app>.toml`: artifact, start and stop, properties, health, placement per
//! environment.

use super::*;

/// What an app file is checked against.
pub(super) struct AppScope<'a> {
    pub(super) group: DefaultGroup,
    pub(super) defaults: Defaults,
    pub(super) envs: &'a Envs,
}

/// kai.toml's `[repository] group`, for apps that do not set their own.
pub(super) enum DefaultGroup {
    Set(String),
    Unset,
    /// kai.toml could not be read: a missing group is not reported on every app.
    Unknown,
}

impl From<Option<String>> for DefaultGroup {
    fn from(group: Option<String>) -> DefaultGroup {
        group.map_or(DefaultGroup::Unset, DefaultGroup::Set)
    }
}

pub(super) fn load_apps(files: &[SourceFile], scope: &AppScope<'_>, errors: &mut Vec<ConfigError>) -> BTreeMap<String, App> {
    let mut apps = BTreeMap::new();
    for file in files {
        let name = name_from_file(file, "app", errors);
        let mut ctx = FileCtx::new(file, errors);
        if let Some(raw) = ctx.parse::<RawApp>() {
            let app = app(&mut ctx, &name, &raw, scope);
            apps.insert(name, app);
        }
    }
    apps
}

pub(super) fn app(ctx: &mut FileCtx<'_>, name: &str, raw: &RawApp, scope: &AppScope<'_>) -> App {
    let packagings = [("zip", Packaging::Zip), ("tar.gz", Packaging::TarGz), ("jar", Packaging::Jar)];
    let required = |ctx: &mut FileCtx<'_>, value: Option<&Spanned<String>>, key: &str, example: &str| {
        if value.is_none() && !ctx.blanked(key) {
            ctx.missing(key, format!("missing `{key}`"), format!("add `{key} = {example}`"));
        }
    };
    required(ctx, raw.user.as_ref(), "user", "\"the Unix account that runs the app\"");
    required(ctx, raw.start.as_ref(), "start", "\"bin/start.sh\" (run in <home>/current)");
    required(ctx, raw.stop.as_ref(), "stop", "\"bin/stop.sh\"");
    if let Some(user) = &raw.user {
        identifier(ctx, user, "user", "user name");
    }
    let app = App {
        name: name.to_owned(),
        group: app_group(ctx, raw.group.as_ref(), scope),
        artifact: artifact(ctx, raw.artifact.as_ref(), name),
        classifier: raw.classifier.as_ref().map(|c| {
            coordinate(ctx, c, "classifier", "classifier");
            c.get_ref().clone()
        }),
        packaging: choice(ctx, raw.packaging.as_ref(), "packaging", &packagings, Packaging::Jar),
        user: raw.user.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default(),
        home: home(ctx, raw.home.as_ref()),
        start: raw.start.as_ref().map(|c| command(ctx, c, "start")).unwrap_or_default(),
        stop: raw.stop.as_ref().map(|c| command(ctx, c, "stop")).unwrap_or_default(),
        start_timeout: duration(ctx, raw.start_timeout.as_ref(), "start_timeout", scope.defaults.start_timeout),
        stop_timeout: duration(ctx, raw.stop_timeout.as_ref(), "stop_timeout", scope.defaults.stop_timeout),
        properties_file: raw.properties_file.as_ref().map(|p| properties_file(ctx, p)),
        properties: properties(ctx, &raw.properties, "properties"),
        health: health(ctx, raw.health.as_ref(), scope.defaults.health_timeout),
        rollout: raw.rollout.as_ref().map(|r| rollout(ctx, r, "rollout")),
        on_failure: on_failure(ctx, raw.on_failure.as_ref(), "on_failure"),
        canary: raw.canary.as_ref().map(|c| canary(ctx, c.get_ref())),
        envs: raw.env.iter().map(|(env, placement)| app_env(ctx, env, placement, scope)).collect(),
    };
    if let (Some(raw_canary), Some(canary)) = (&raw.canary, &app.canary) {
        for env in raw.env.keys().filter_map(|e| scope.envs.loaded.get(e.get_ref())) {
            canary_judge(ctx, raw_canary, canary, env);
        }
    }
    app
}

pub(super) fn app_group(ctx: &mut FileCtx<'_>, own: Option<&Spanned<String>>, scope: &AppScope<'_>) -> String {
    if let Some(group) = own {
        coordinate(ctx, group, "group", "groupId");
        return group.get_ref().clone();
    }
    match &scope.group {
        DefaultGroup::Set(group) => group.clone(),
        DefaultGroup::Unset => {
            let hint = "set `group = \"org.example.services\"` in this file, or a default `group` in kai.toml [repository]";
            ctx.missing("group", "no Maven groupId for this app", hint);
            String::new()
        }
        DefaultGroup::Unknown => String::new(),
    }
}

pub(super) fn artifact(ctx: &mut FileCtx<'_>, own: Option<&Spanned<String>>, name: &str) -> String {
    match own {
        Some(artifact) => {
            coordinate(ctx, artifact, "artifact", "artifactId");
            artifact.get_ref().clone()
        }
        None => name.to_owned(),
    }
}

pub(super) fn home(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<String>>) -> String {
    let Some(raw) = raw else {
        return "~".to_owned();
    };
    let text = raw.get_ref();
    if text != "~" && !text.starts_with('/') {
        ctx.error(&raw.span(), "home", format!("expected \"~\" (the user's home) or an absolute path, found {text:?}"));
    }
    text.clone()
}

/// A path inside the release: relative, and never leaving it.
pub(super) fn properties_file(ctx: &mut FileCtx<'_>, raw: &Spanned<String>) -> String {
    let text = raw.get_ref();
    let path = Path::new(text);
    let inside = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if text.trim().is_empty() || !inside || text.ends_with('/') {
        let message =
            format!("expected a file path inside the release, like \"config/app.properties\" (relative, no '..'), found {text:?}");
        ctx.error(&raw.span(), "properties_file", message);
    }
    text.clone()
}

/// The properties in the order the file lists them (they are written in that order).
pub(super) fn properties(ctx: &mut FileCtx<'_>, raw: &RawProperties, prefix: &str) -> Vec<(String, Template)> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = raw.iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    for (name, value) in entries {
        let key = format!("{prefix}.{}", key_part(name.get_ref()));
        property_name(ctx, name, &key);
        let parsed = match value.get_ref() {
            RawProperty::Literal(text) => Some(Template::literal(text)),
            RawProperty::Template(text) if text.contains(['\n', '\r']) => {
                ctx.error(&value.span(), &key, "expected a single line (properties are written as `key=value` lines)");
                None
            }
            RawProperty::Template(text) => property_template(ctx, &Spanned::new(value.span(), text.clone()), &key),
        };
        if let Some(t) = parsed {
            out.push((name.get_ref().clone(), t));
        }
    }
    out
}

pub(super) fn property_name(ctx: &mut FileCtx<'_>, name: &Spanned<String>, key: &str) {
    let text = name.get_ref();
    let bad_char = text.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | ':'));
    if text.is_empty() || bad_char || text.starts_with(['#', '!']) {
        let message = format!("invalid property name {text:?}: expected no spaces, '=' or ':', not starting with '#' or '!'");
        ctx.error(&name.span(), key, message);
    }
}

pub(super) fn health(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<RawHealth>>, default_timeout: Duration) -> Health {
    let Some(raw) = raw else {
        return Health { check: HealthCheck::None, timeout: default_timeout, stable: DEFAULT_STABLE };
    };
    let health = raw.get_ref();
    let check = match (&health.http, &health.command) {
        (Some(url), None) => http_check(ctx, url),
        (None, Some(command_line)) => HealthCheck::Command { argv: command(ctx, command_line, "health.command") },
        (Some(_), Some(command_line)) => {
            ctx.error(&command_line.span(), "health", "set either `http` or `command`, not both");
            HealthCheck::None
        }
        (None, None) => {
            let message = "expected `http = \"http://{address}:8080/ready\"` or `command = \"bin/status.sh\"`";
            ctx.error(&raw.span(), "health", message);
            HealthCheck::None
        }
    };
    Health {
        check,
        timeout: duration(ctx, health.timeout.as_ref(), "health.timeout", default_timeout),
        stable: duration(ctx, health.stable.as_ref(), "health.stable", DEFAULT_STABLE),
    }
}

pub(super) fn http_check(ctx: &mut FileCtx<'_>, url: &Spanned<String>) -> HealthCheck {
    if !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://")) {
        let message = format!("expected an http:// or https:// URL like \"http://{{address}}:8080/ready\", found {:?}", url.get_ref());
        ctx.error(&url.span(), "health.http", message);
    }
    match template(ctx, url, "health.http") {
        Some(url) => HealthCheck::Http { url },
        None => HealthCheck::None,
    }
}

pub(super) fn app_env(ctx: &mut FileCtx<'_>, env: &Spanned<String>, raw: &RawAppEnv, scope: &AppScope<'_>) -> (String, AppEnv) {
    let key = format!("env.{}", key_part(env.get_ref()));
    let hosts = env_hosts(ctx, env, &key, scope.envs);
    if raw.servers.get_ref().is_empty() {
        ctx.error(&raw.servers.span(), &format!("{key}.servers"), "expected at least one server, like servers = [\"app01\"]");
    }
    let placement = Placement { env: env.get_ref(), hosts: hosts.as_ref() };
    let servers = placement.check(ctx, raw.servers.get_ref(), &format!("{key}.servers"), &[]);
    let standby = placement.check(ctx, &raw.standby, &format!("{key}.standby"), &servers);
    let properties = properties(ctx, &raw.properties, &format!("{key}.properties"));
    (env.get_ref().clone(), AppEnv { servers, standby, properties })
}

/// The host names of the environment `[env.<name>]` refers to; `None` when it is
/// unknown (reported here) or its file is broken (reported there).
pub(super) fn env_hosts(ctx: &mut FileCtx<'_>, env: &Spanned<String>, key: &str, envs: &Envs) -> Option<Vec<String>> {
    if let Some(environment) = envs.loaded.get(env.get_ref()) {
        let broken = envs.broken_hosts.get(env.get_ref()).into_iter().flatten();
        return Some(environment.hosts.keys().chain(broken).cloned().collect());
    }
    if !envs.broken.contains(env.get_ref()) {
        let known: Vec<&str> = envs.loaded.keys().chain(envs.broken.iter()).map(String::as_str).collect();
        let (message, hint) = unknown_name("environment", env.get_ref(), "", &known);
        let hint = hint
            .or_else(|| Some(format!("environments are the files environments/<name>.toml; create environments/{}.toml", env.get_ref())));
        ctx.error_hint(&env.span(), key, message, hint);
    }
    None
}

/// Checks server and standby lists against one environment's hosts.
pub(super) struct Placement<'a> {
    pub(super) env: &'a str,
    pub(super) hosts: Option<&'a Vec<String>>,
}

impl Placement<'_> {
    pub(super) fn check(&self, ctx: &mut FileCtx<'_>, names: &[Spanned<String>], key: &str, servers: &[String]) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for name in names {
            let text = name.get_ref();
            if seen.contains(text) {
                ctx.error(&name.span(), key, format!("host {text:?} is listed twice"));
                continue;
            }
            if servers.contains(text) {
                ctx.error(&name.span(), key, format!("host {text:?} is both a server and a standby"));
            }
            self.known(ctx, name, key);
            seen.push(text.clone());
        }
        seen
    }

    pub(super) fn known(&self, ctx: &mut FileCtx<'_>, name: &Spanned<String>, key: &str) {
        let Some(hosts) = self.hosts else { return };
        if hosts.contains(name.get_ref()) {
            return;
        }
        let known: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let (message, hint) = unknown_name("host", name.get_ref(), &format!(" in environment {}", self.env), &known);
        ctx.error_hint(&name.span(), key, message, hint);
    }
}
