//! Loading the configuration repository: the text of its files in, a validated
//! [`Config`] out, or every problem found (file, line, key, what was expected).
//!
//! Each file is first read into `Raw*` structs that mirror its TOML exactly (unknown
//! keys and wrong types are refused there, with the span of the offending text), then
//! checked value by value into the model. A file that cannot be read into its raw
//! struct reports that one problem; every other file is still checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::de::{self, value::MapAccessDeserializer, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, ConfigErrors};
use super::model::{
    App, AppEnv, Balancer, BalancerKind, Batch, Canary, Config, Defaults, EmailNotify, Environment, FetchMode, Health, HealthCheck, Host,
    NotifyConfig, OnFailure, RepoLocation, RepositoryConfig, RolloutPolicy, SmtpTls, TransportKind, WebhookNotify, DEFAULT_STABLE,
    REPOSITORY_TIMEOUT,
};
use crate::canary::LowTraffic;
use crate::command::split_command_line;
use crate::ident;
use crate::maven::Packaging;
use crate::template::Template;

/// The text of one configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the configuration root, as shown in errors: `apps/jmsadmin.toml`.
    pub path: PathBuf,
    pub text: String,
}

/// Every file of a configuration repository, read by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSources {
    /// The folder holding `kai.toml` (absolute).
    pub root: PathBuf,
    pub kai_toml: SourceFile,
    /// `environments/*.toml`: the file stem is the environment's name.
    pub environments: Vec<SourceFile>,
    /// `apps/*.toml`: the file stem is the application's name.
    pub apps: Vec<SourceFile>,
}

/// Parses and validates everything; returns every problem found, not just the first.
///
/// # Errors
///
/// Every problem in every file, each naming its file, line and key.
pub fn load(sources: &ConfigSources) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let root = &sources.root;
    let kai = load_kai(&sources.kai_toml, root, &mut errors);
    let envs = load_environments(&sources.environments, root, &mut errors);
    let scope = AppScope {
        group: match &kai {
            Some(kai) => DefaultGroup::from(kai.repository.group.clone()),
            None => DefaultGroup::Unknown,
        },
        defaults: kai.as_ref().map_or_else(Defaults::default, |k| k.defaults.clone()),
        envs: &envs,
    };
    let apps = load_apps(&sources.apps, &scope, &mut errors);
    match kai {
        Some(kai) if errors.is_empty() => Ok(Config {
            root: root.clone(),
            repository: kai.repository,
            defaults: kai.defaults,
            notify: kai.notify,
            environments: envs.loaded,
            apps,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

// ---------------------------------------------------------------------------------
// Raw files, exactly as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKai {
    repository: RawRepository,
    #[serde(default)]
    defaults: RawDefaults,
    notify: Option<RawNotify>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    url: Spanned<String>,
    group: Option<Spanned<String>>,
    username_env: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    keep_releases: Option<Spanned<i64>>,
    fetch: Option<Spanned<String>>,
    health_timeout: Option<Spanned<String>>,
    start_timeout: Option<Spanned<String>>,
    stop_timeout: Option<Spanned<String>>,
    fetch_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    email: Option<RawEmail>,
    webhook: Option<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    smtp: Spanned<String>,
    tls: Option<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<Vec<Spanned<String>>>,
    username_env: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url_env: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    #[serde(default)]
    protected: bool,
    #[serde(default)]
    allow_local: bool,
    transport: Option<Spanned<String>>,
    ssh_config: Option<Spanned<String>>,
    known_hosts: Option<Spanned<String>>,
    ssh_persist: Option<Spanned<String>>,
    rollout: Option<RawRollout>,
    on_failure: Option<Spanned<String>>,
    canary: Option<Spanned<RawCanary>>,
    hosts: Spanned<BTreeMap<Spanned<String>, Spanned<RawHost>>>,
    balancer: Option<RawBalancer>,
    notify: Option<RawNotify>,
}

/// `app01 = "address"` or `app01 = { address = "...", port = 22, ... }`.
enum RawHost {
    Address(String),
    Table(RawHostTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostTable {
    address: Spanned<String>,
    port: Option<Spanned<u16>>,
    login: Option<Spanned<String>>,
    root: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    batch: Option<Spanned<RawBatch>>,
    #[serde(default)]
    canary: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanary {
    hosts: Option<Spanned<RawBatch>>,
    window: Option<Spanned<String>>,
    min_requests: Option<Spanned<i64>>,
    error_factor: Option<Spanned<f64>>,
    error_margin: Option<Spanned<String>>,
    slowdown: Option<Spanned<f64>>,
    slowdown_margin: Option<Spanned<String>>,
    on_low_traffic: Option<Spanned<String>>,
    max_windows: Option<Spanned<i64>>,
    judge_command: Option<Spanned<String>>,
}

/// `batch = 2` or `batch = "25%"`.
enum RawBatch {
    Count(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBalancer {
    kind: Option<Spanned<String>>,
    #[serde(default)]
    proxies: Vec<Spanned<String>>,
    admin: Option<Spanned<String>>,
    backend: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    drain_wait: Option<Spanned<String>>,
    settle: Option<Spanned<String>>,
    drain_timeout: Option<Spanned<String>>,
    drain_command: Option<Spanned<String>>,
    undrain_command: Option<Spanned<String>>,
    manager: Option<Spanned<String>>,
    worker: Option<Spanned<String>>,
    /// httpd's name for the app's pool (`balancer://<name>`); `backend` for HAProxy.
    balancer: Option<Spanned<String>>,
    username_env: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    reload: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    group: Option<Spanned<String>>,
    artifact: Option<Spanned<String>>,
    classifier: Option<Spanned<String>>,
    packaging: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    home: Option<Spanned<String>>,
    start: Option<Spanned<String>>,
    stop: Option<Spanned<String>>,
    start_timeout: Option<Spanned<String>>,
    stop_timeout: Option<Spanned<String>>,
    properties_file: Option<Spanned<String>>,
    #[serde(default)]
    properties: RawProperties,
    health: Option<Spanned<RawHealth>>,
    rollout: Option<RawRollout>,
    on_failure: Option<Spanned<String>>,
    canary: Option<Spanned<RawCanary>>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, RawAppEnv>,
}

type RawProperties = BTreeMap<Spanned<String>, Spanned<RawProperty>>;

/// A property value: a string is a template, anything else is literal text.
enum RawProperty {
    Template(String),
    Literal(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    http: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    stable: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppEnv {
    servers: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    standby: Vec<Spanned<String>>,
    #[serde(default)]
    properties: RawProperties,
}

impl<'de> Deserialize<'de> for RawHost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HostVisitor;
        impl<'de> Visitor<'de> for HostVisitor {
            type Value = RawHost;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address, or a table { address, port, login, root }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHost, E> {
                Ok(RawHost::Address(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHost, A::Error> {
                RawHostTable::deserialize(MapAccessDeserializer::new(map)).map(RawHost::Table)
            }
        }
        deserializer.deserialize_any(HostVisitor)
    }
}

impl<'de> Deserialize<'de> for RawBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BatchVisitor;
        impl Visitor<'_> for BatchVisitor {
            type Value = RawBatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of servers or a percentage like \"25%\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawBatch, E> {
                Ok(RawBatch::Count(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawBatch, E> {
                Ok(RawBatch::Count(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBatch, E> {
                Ok(RawBatch::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(BatchVisitor)
    }
}

impl<'de> Deserialize<'de> for RawProperty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PropertyVisitor;
        impl Visitor<'_> for PropertyVisitor {
            type Value = RawProperty;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawProperty, E> {
                Ok(RawProperty::Template(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawProperty, E> {
                Ok(RawProperty::Literal(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawProperty, E> {
                Ok(RawProperty::Literal(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawProperty, E> {
                Ok(RawProperty::Literal(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawProperty, E> {
                Ok(RawProperty::Literal(v.to_string()))
            }
        }
        deserializer.deserialize_any(PropertyVisitor)
    }
}

// ---------------------------------------------------------------------------------
// One file being checked: where its problems go, and how spans become lines and keys.

struct FileCtx<'a> {
    file: &'a SourceFile,
    errors: &'a mut Vec<ConfigError>,
    /// The keys whose lines [`parse`](Self::parse) blanked out after a problem: already
    /// reported, so not reported again as missing.
    blanked: BTreeSet<String>,
}

impl<'a> FileCtx<'a> {
    fn new(file: &'a SourceFile, errors: &'a mut Vec<ConfigError>) -> FileCtx<'a> {
        FileCtx { file, errors, blanked: BTreeSet::new() }
    }

    fn blanked(&self, key: &str) -> bool {
        self.blanked.contains(key)
    }

    /// Reads the whole file into its raw struct, recording every problem on the way:
    /// after each one (an unknown key, a value of the wrong type, a duplicate key) the
    /// lines it spans are blanked out (their bytes become spaces, so every other line
    /// and offset stays where it was) and the file is read again, so one problem never
    /// hides the next. `None` when the file cannot be read even so.
    fn parse<T: DeserializeOwned>(&mut self) -> Option<T> {
        let mut text = self.file.text.clone();
        for _ in 0..MAX_PROBLEMS_A_FILE {
            let e = match toml::from_str::<T>(&text) {
                Ok(raw) => return Some(raw),
                Err(e) => e,
            };
            let error = toml_error(self.file, &e);
            self.blanked.extend(error.key.clone());
            self.errors.push(error);
            let span = e.span()?;
            let before = text.clone();
            if !blank_lines(&mut text, &span) {
                return None;
            }
            // The keys written on the lines blanked out are reported already (their
            // line had the problem): not again as missing.
            for (old, new) in before.lines().zip(text.lines()).filter(|(a, b)| a != b) {
                let key = old.split_once('=').map(|(k, _)| k.trim().trim_matches('"')).filter(|k| !k.is_empty() && new != old);
                self.blanked.extend(key.map(str::to_owned));
            }
        }
        None
    }

    fn at(&self, span: &Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.file.path, message).with_line(line_of(&self.file.text, span.start)).with_key(key)
    }

    fn error(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let error = self.at(span, key, message);
        self.errors.push(error);
    }

    fn error_hint(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>, hint: Option<String>) {
        let mut error = self.at(span, key, message);
        error.hint = hint;
        self.errors.push(error);
    }

    /// A problem with a key that is not written anywhere (so it has no line).
    fn missing(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        let error = ConfigError::new(&self.file.path, message).with_key(key).with_hint(hint);
        self.errors.push(error);
    }
}

/// How many problems of one file are looked for before giving up on it.
const MAX_PROBLEMS_A_FILE: usize = 32;

/// Blanks out the whole lines `span` touches (every byte but newlines becomes a
/// space), and when it starts at a table's header, the table to the next header;
/// whether anything changed.
fn blank_lines(text: &mut String, span: &Range<usize>) -> bool {
    let start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let mut end = text[span.end.min(text.len())..].find('\n').map_or(text.len(), |i| span.end.min(text.len()) + i);
    if text[start..].trim_start().starts_with('[') {
        let mut at = end;
        while at < text.len() {
            let line_end = text[at + 1..].find('\n').map_or(text.len(), |i| at + 1 + i);
            if text[at + 1..line_end].trim_start().starts_with('[') {
                break;
            }
            at = line_end;
        }
        end = at;
    }
    let blank: String = text[start..end].bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
    if blank == text[start..end] {
        return false;
    }
    // Multi-byte characters become as many spaces as they had bytes: offsets stay.
    text.replace_range(start..end, &blank);
    true
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Turns toml's error (unknown key, wrong type, missing key, syntax) into ours.
fn toml_error(file: &SourceFile, e: &toml::de::Error) -> ConfigError {
    let raw = e.message().trim().replace('\n', "; ");
    let (message, type_hint) = match type_mismatch(&raw) {
        Some((message, hint)) => (message, hint),
        None => (raw, None),
    };
    let duplicate = message.starts_with("duplicate key").then(|| e.span()).flatten().and_then(|span| file.text.get(span));
    let message = match duplicate {
        Some(key) => format!("`{}` is set twice (a key may appear once in its table)", key.trim().trim_matches('"')),
        None => message,
    };
    let mut error = ConfigError::new(&file.path, message.clone());
    if let Some(span) = e.span() {
        error.line = Some(line_of(&file.text, span.start));
        let mut path = key_path_at(&file.text, &span);
        if let Some(field) = quoted_after(&message, "missing field `") {
            path.push(field.to_owned());
        }
        if path.is_empty() {
            // A syntax error: the key written on its line, when there is one.
            let line = file.text[..span.start.min(file.text.len())].rsplit('\n').next().unwrap_or_default().to_owned()
                + file.text[span.start.min(file.text.len())..].split('\n').next().unwrap_or_default();
            if let Some((key, _)) = line.split_once('=').filter(|(k, _)| !k.trim().is_empty() && !k.contains('[')) {
                path.push(key.trim().trim_matches('"').to_owned());
            }
        }
        if !path.is_empty() {
            error.key = Some(dotted(&path));
        }
    }
    error.hint = unknown_key_hint(&message).or(type_hint);
    error
}

/// serde's "invalid type: string \"5\", expected i64" in words a reader of TOML uses,
/// with how to write it when the value only has the wrong quoting.
fn type_mismatch(message: &str) -> Option<(String, Option<String>)> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (found, expected) = rest.rsplit_once(", expected ")?;
    let wanted = match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" | "i128" | "u128" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a sequence" => "a list like [\"a\", \"b\"]",
        "a map" => "a table",
        other => other,
    };
    let found = found.replace('`', "");
    let hint = if wanted == "a whole number" && found.starts_with("string") {
        let inner = found.trim_start_matches("string ").trim_matches('"');
        inner.parse::<i64>().is_ok().then(|| format!("write it without quotes: {inner}"))
    } else if wanted == "true or false" && (found == "string \"true\"" || found == "string \"false\"") {
        Some("write it without quotes".to_owned())
    } else if wanted == "a string" && (found.starts_with("integer") || found.starts_with("float") || found.starts_with("boolean")) {
        let inner = found.split_once(' ').map_or("", |(_, v)| v);
        Some(format!("write it in quotes: \"{inner}\""))
    } else {
        None
    };
    Some((format!("expected {wanted}, found {found}"), hint))
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "token", "api_key", "apikey"];

/// For toml's "unknown field" message: where secrets belong, or the nearest allowed key.
fn unknown_key_hint(message: &str) -> Option<String> {
    let field = quoted_after(message, "unknown field `")?;
    let expected: Vec<&str> =
        message.split_once("expected").map(|(_, list)| list.split('`').skip(1).step_by(2).collect()).unwrap_or_default();
    let env_key = format!("{field}_env");
    if expected.contains(&env_key.as_str()) {
        return Some(format!(
            "secrets never go in the configuration: set `{env_key}` to the name of the environment variable that holds it"
        ));
    }
    if SECRET_WORDS.contains(&field) {
        return Some("secrets never go in the configuration: kai reads them from environment variables named by `*_env` keys".into());
    }
    nearest(field, expected.iter().copied()).map(|n| format!("did you mean `{n}`?"))
}

/// The dotted key whose name or value covers `span` (the most specific one).
fn key_path_at(text: &str, span: &Range<usize>) -> Vec<String> {
    if span.is_empty() {
        return Vec::new();
    }
    let Ok(doc) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut search = KeySearch { target: span.clone(), path: Vec::new(), best: None };
    search.table(doc.get_ref());
    search.best.map(|(_, path)| path).unwrap_or_default()
}

struct KeySearch {
    target: Range<usize>,
    path: Vec<String>,
    best: Option<(usize, Vec<String>)>,
}

impl KeySearch {
    fn table(&mut self, table: &DeTable<'_>) {
        for (key, value) in table {
            self.path.push(key.get_ref().to_string());
            self.consider(&key.span());
            self.consider(&value.span());
            self.value(value.get_ref());
            self.path.pop();
        }
    }

    fn value(&mut self, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.table(table),
            DeValue::Array(items) => items.iter().for_each(|item| self.value(item.get_ref())),
            _ => {}
        }
    }

    fn consider(&mut self, span: &Range<usize>) {
        let covers = span.start <= self.target.start && self.target.end <= span.end;
        if covers && self.best.as_ref().is_none_or(|(len, _)| span.len() < *len) {
            self.best = Some((span.len(), self.path.clone()));
        }
    }
}

/// `env.prod.properties."jvm.xmx"`: parts that are not bare TOML keys are quoted.
fn dotted(parts: &[String]) -> String {
    parts.iter().map(|p| key_part(p)).collect::<Vec<_>>().join(".")
}

fn key_part(part: &str) -> String {
    let bare = !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        part.to_owned()
    } else {
        format!("{part:?}")
    }
}

// ---------------------------------------------------------------------------------
// Values every file uses.

fn duration(ctx: &mut FileCtx<'_>, value: Option<&Spanned<String>>, key: &str, default: Duration) -> Duration {
    let Some(value) = value else { return default };
    if let Ok(d) = humantime::parse_duration(value.get_ref().trim()) {
        return d;
    }
    let message = format!("expected a duration like \"60s\", found {:?}", value.get_ref());
    ctx.error(&value.span(), key, message);
    default
}

/// One of a fixed set of words.
fn choice<T: Copy>(ctx: &mut FileCtx<'_>, value: Option<&Spanned<String>>, key: &str, choices: &[(&str, T)], default: T) -> T {
    let Some(value) = value else { return default };
    if let Some((_, chosen)) = choices.iter().find(|(word, _)| word == value.get_ref()) {
        return *chosen;
    }
    let words = choices.iter().map(|(word, _)| *word);
    let hint = nearest(value.get_ref(), words.clone()).map(did_you_mean);
    let message = format!("unknown value {:?} (expected one of: {})", value.get_ref(), words.collect::<Vec<_>>().join(", "));
    ctx.error_hint(&value.span(), key, message, hint);
    default
}

fn template(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) -> Option<Template> {
    match Template::parse(value.get_ref()) {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.error(&value.span(), key, format!("invalid template {:?}: {e}", value.get_ref()));
            None
        }
    }
}

fn command(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) -> Vec<String> {
    match split_command_line(value.get_ref()) {
        Ok(argv) if !argv.is_empty() => argv,
        Ok(_) => {
            ctx.error(&value.span(), key, "expected a command like \"bin/start.sh\", found nothing");
            Vec::new()
        }
        Err(e) => {
            ctx.error(&value.span(), key, format!("invalid command {:?}: {e}", value.get_ref()));
            Vec::new()
        }
    }
}

/// An app, host or environment name used as a value (or a key).
fn identifier(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str, what: &str) {
    if let Some(problem) = ident::problem(value.get_ref()) {
        ctx.error(&value.span(), key, format!("invalid {what} {:?}: {problem}", value.get_ref()));
    }
}

/// The name of an environment variable holding a secret. The value is never echoed:
/// it may be the secret itself, written in the wrong place.
fn env_var(ctx: &mut FileCtx<'_>, value: Option<&Spanned<String>>, key: &str) -> Option<String> {
    let value = value?;
    let name = value.get_ref();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        let hint = "secrets come from the environment: give the variable's name, not its value".to_owned();
        ctx.error_hint(&value.span(), key, "expected the name of an environment variable like \"KAI_PASSWORD\"", Some(hint));
    }
    Some(name.clone())
}

/// `username_env` and `password_env` go together.
fn credentials(
    ctx: &mut FileCtx<'_>,
    username: Option<&Spanned<String>>,
    password: Option<&Spanned<String>>,
    prefix: &str,
) -> (Option<String>, Option<String>) {
    match (username, password) {
        (Some(u), None) => ctx.error(&u.span(), &format!("{prefix}username_env"), "set `password_env` as well, or neither"),
        (None, Some(p)) => ctx.error(&p.span(), &format!("{prefix}password_env"), "set `username_env` as well, or neither"),
        _ => {}
    }
    (env_var(ctx, username, &format!("{prefix}username_env")), env_var(ctx, password, &format!("{prefix}password_env")))
}

/// Why `value` is not a Maven groupId, artifactId or classifier.
fn coordinate(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str, what: &str) {
    let s = value.get_ref();
    let valid = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        ctx.error(&value.span(), key, format!("expected a Maven {what} (letters, digits, '.', '_', '-'), found {s:?}"));
    }
}

fn resolve(root: &Path, path: &str) -> PathBuf {
    root.join(path).components().collect()
}

fn did_you_mean(name: &str) -> String {
    format!("did you mean {name:?}?")
}

/// The candidate closest to `name`, if it is close enough to be a typo.
fn nearest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    crate::suggest::nearest(name, candidates).first().copied()
}

fn unknown_name(kind: &str, name: &str, place: &str, known: &[&str]) -> (String, Option<String>) {
    let message = if known.is_empty() {
        format!("unknown {kind} {name:?}{place} (there are none)")
    } else {
        format!("unknown {kind} {name:?}{place} (expected one of: {})", known.join(", "))
    };
    (message, nearest(name, known.iter().copied()).map(did_you_mean))
}

// ---------------------------------------------------------------------------------
// kai.toml

struct KaiToml {
    repository: RepositoryConfig,
    defaults: Defaults,
    notify: Option<NotifyConfig>,
}

fn load_kai(file: &SourceFile, root: &Path, errors: &mut Vec<ConfigError>) -> Option<KaiToml> {
    let mut ctx = FileCtx::new(file, errors);
    let raw: RawKai = ctx.parse()?;
    Some(KaiToml {
        repository: repository(&mut ctx, &raw.repository, root),
        defaults: defaults(&mut ctx, &raw.defaults),
        notify: raw.notify.as_ref().map(|n| notify(&mut ctx, n, "notify")),
    })
}

fn repository(ctx: &mut FileCtx<'_>, raw: &RawRepository, root: &Path) -> RepositoryConfig {
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

fn repo_location(ctx: &mut FileCtx<'_>, url: &Spanned<String>, root: &Path) -> RepoLocation {
    let text = url.get_ref().trim();
    let expected = "expected an http(s):// URL, file:///absolute/path, or a path relative to the configuration root";
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        ctx.error(&url.span(), "repository.url", format!("{expected}, found {:?}", url.get_ref()));
        return RepoLocation::Folder(root.to_path_buf());
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return RepoLocation::Http(text.trim_end_matches('/').to_owned());
    }
    if let Some(path) = text.strip_prefix("file://") {
        if !path.starts_with('/') {
            ctx.error(&url.span(), "repository.url", format!("{expected}, found {text:?}"));
        }
        return RepoLocation::Folder(resolve(root, path));
    }
    if text.contains("://") {
        ctx.error(&url.span(), "repository.url", format!("unsupported URL scheme in {text:?} ({expected})"));
    }
    RepoLocation::Folder(resolve(root, text))
}

fn defaults(ctx: &mut FileCtx<'_>, raw: &RawDefaults) -> Defaults {
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

fn keep_releases(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<i64>>) -> Option<u32> {
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

fn notify(ctx: &mut FileCtx<'_>, raw: &RawNotify, prefix: &str) -> NotifyConfig {
    NotifyConfig {
        email: raw.email.as_ref().map(|e| email(ctx, e, &format!("{prefix}.email"))),
        webhook: raw
            .webhook
            .as_ref()
            .map(|w| WebhookNotify { url_env: env_var(ctx, Some(&w.url_env), &format!("{prefix}.webhook.url_env")).unwrap_or_default() }),
    }
}

fn email(ctx: &mut FileCtx<'_>, raw: &RawEmail, prefix: &str) -> EmailNotify {
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
fn smtp_server(ctx: &mut FileCtx<'_>, smtp: &Spanned<String>, tls: SmtpTls, prefix: &str) {
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

fn mail_address(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) {
    let s = value.get_ref();
    if !s.contains('@') || s.chars().any(char::is_control) {
        ctx.error(&value.span(), key, format!("expected an email address like \"ops@example.org\", found {s:?}"));
    }
}

// ---------------------------------------------------------------------------------
// environments/<env>.toml

/// The environments that loaded, and the names of those whose files could not be read
/// at all (references to them are not reported as unknown).
struct Envs {
    loaded: BTreeMap<String, Environment>,
    broken: BTreeSet<String>,
    /// Per environment, the hosts whose entries had a problem (reported there): left
    /// out of it, and not reported unknown where they are named.
    broken_hosts: BTreeMap<String, BTreeSet<String>>,
}

fn load_environments(files: &[SourceFile], root: &Path, errors: &mut Vec<ConfigError>) -> Envs {
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
fn name_from_file(file: &SourceFile, what: &str, errors: &mut Vec<ConfigError>) -> String {
    let stem = file.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(problem) = ident::problem(&stem) {
        let message = format!("invalid {what} name {stem:?} (taken from the file name): {problem}");
        let hint = "rename the file: a name starts with a letter or digit, then letters, digits, '.', '_', '+', '-'";
        errors.push(ConfigError::new(&file.path, message).with_hint(hint));
    }
    stem
}

fn environment(ctx: &mut FileCtx<'_>, name: &str, raw: &RawEnvironment, root: &Path, broken_hosts: &BTreeSet<String>) -> Environment {
    let transport_choices = [("ssh", TransportKind::Ssh), ("local", TransportKind::Local)];
    let transport = choice(ctx, raw.transport.as_ref(), "transport", &transport_choices, TransportKind::Ssh);
    let hosts = hosts(ctx, &raw.hosts, transport, root);
    let environment = Environment {
        name: name.to_owned(),
        protected: raw.protected,
        allow_local: raw.allow_local,
        transport,
        ssh_config: raw.ssh_config.as_ref().map(|p| repo_path(ctx, p, "ssh_config", root)),
        known_hosts: raw.known_hosts.as_ref().map(|p| repo_path(ctx, p, "known_hosts", root)),
        ssh_persist: duration(ctx, raw.ssh_persist.as_ref(), "ssh_persist", super::model::SSH_PERSIST),
        rollout: raw.rollout.as_ref().map(|r| rollout(ctx, r, "rollout")).unwrap_or_default(),
        on_failure: on_failure(ctx, raw.on_failure.as_ref(), "on_failure").unwrap_or_default(),
        canary: raw.canary.as_ref().map(|c| canary(ctx, c.get_ref())),
        balancer: raw.balancer.as_ref().map(|b| balancer(ctx, b, name, &hosts, broken_hosts)).unwrap_or_default(),
        notify: raw.notify.as_ref().map(|n| notify(ctx, n, "notify")),
        hosts,
    };
    if let (Some(raw), Some(canary)) = (&raw.canary, &environment.canary) {
        canary_judge(ctx, raw, canary, &environment);
    }
    environment
}

/// A canary is judged by HAProxy's counters, or by a `judge_command`.
fn canary_judge(ctx: &mut FileCtx<'_>, raw: &Spanned<RawCanary>, canary: &Canary, environment: &Environment) {
    if canary.judge_command.is_empty() && environment.balancer.kind != BalancerKind::Haproxy {
        let message =
            format!("a canary is judged by HAProxy's counters, and environment {} has no kind = \"haproxy\" balancer", environment.name);
        let hint = "use HAProxy in [balancer], or set judge_command = \"...\" (it runs here; exit 0 means good)".to_owned();
        ctx.error_hint(&raw.span(), "canary", message, Some(hint));
    }
}

/// A file named relative to the configuration repository.
fn repo_path(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str, root: &Path) -> PathBuf {
    if value.get_ref().trim().is_empty() {
        ctx.error(&value.span(), key, "expected a path relative to the configuration repository, found nothing");
    }
    resolve(root, value.get_ref())
}

fn rollout(ctx: &mut FileCtx<'_>, raw: &RawRollout, key: &str) -> RolloutPolicy {
    let batch = raw.batch.as_ref().and_then(|b| batch(ctx, b, &format!("{key}.batch")));
    RolloutPolicy { batch: batch.unwrap_or(Batch::Count(1)), canary: raw.canary }
}

fn batch(ctx: &mut FileCtx<'_>, raw: &Spanned<RawBatch>, key: &str) -> Option<Batch> {
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
fn canary(ctx: &mut FileCtx<'_>, raw: &RawCanary) -> Canary {
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

fn on_failure(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<String>>, key: &str) -> Option<OnFailure> {
    let raw = raw?;
    let choices = [("rollback", Some(OnFailure::Rollback)), ("halt", Some(OnFailure::Halt))];
    choice(ctx, Some(raw), key, &choices, None)
}

fn hosts(
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

fn host(ctx: &mut FileCtx<'_>, name: &Spanned<String>, raw: &Spanned<RawHost>, transport: TransportKind, root: &Path) -> Host {
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

fn address_of(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) -> String {
    let s = value.get_ref();
    let valid = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '%'));
    if !valid {
        let message = format!("expected a host name or IP address (letters, digits, '.', '-', '_', ':', '[', ']'), found {s:?}");
        ctx.error(&value.span(), key, message);
    }
    s.clone()
}

fn port(ctx: &mut FileCtx<'_>, value: &Spanned<u16>, key: &str) -> u16 {
    if *value.get_ref() == 0 {
        ctx.error(&value.span(), key, "expected a port from 1 to 65535, found 0");
    }
    *value.get_ref()
}

/// Local hosts live under `<config root>/.kai/hosts/<host>` unless `root` says otherwise
/// (relative to the configuration root); a remote `root` must be absolute.
fn host_root(
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

fn balancer(
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
struct HttpdKeys {
    manager: Option<Template>,
    worker: Option<Template>,
    username_env: Option<String>,
    password_env: Option<String>,
}

/// `manager` and `worker` (both needed for httpd) and the manager's credentials; each
/// an error with another kind.
/// The app's pool in the balancer: HAProxy's `backend`, httpd's `balancer` (httpd also
/// takes `backend`, as HAProxy's name for the same thing, but not both).
fn pool_name(ctx: &mut FileCtx<'_>, raw: &RawBalancer, kind: BalancerKind) -> Option<Template> {
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

fn httpd_keys(ctx: &mut FileCtx<'_>, raw: &RawBalancer, kind: BalancerKind) -> HttpdKeys {
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
fn balancer_command(
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
fn balancer_admin(ctx: &mut FileCtx<'_>, admin: &Spanned<String>, kind: BalancerKind) {
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

fn haproxy_needs(ctx: &mut FileCtx<'_>, raw: &RawBalancer) {
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

// ---------------------------------------------------------------------------------
// apps/<app>.toml

/// What an app file is checked against.
struct AppScope<'a> {
    group: DefaultGroup,
    defaults: Defaults,
    envs: &'a Envs,
}

/// kai.toml's `[repository] group`, for apps that do not set their own.
enum DefaultGroup {
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

fn load_apps(files: &[SourceFile], scope: &AppScope<'_>, errors: &mut Vec<ConfigError>) -> BTreeMap<String, App> {
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

fn app(ctx: &mut FileCtx<'_>, name: &str, raw: &RawApp, scope: &AppScope<'_>) -> App {
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

fn app_group(ctx: &mut FileCtx<'_>, own: Option<&Spanned<String>>, scope: &AppScope<'_>) -> String {
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

fn artifact(ctx: &mut FileCtx<'_>, own: Option<&Spanned<String>>, name: &str) -> String {
    match own {
        Some(artifact) => {
            coordinate(ctx, artifact, "artifact", "artifactId");
            artifact.get_ref().clone()
        }
        None => name.to_owned(),
    }
}

fn home(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<String>>) -> String {
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
fn properties_file(ctx: &mut FileCtx<'_>, raw: &Spanned<String>) -> String {
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
fn properties(ctx: &mut FileCtx<'_>, raw: &RawProperties, prefix: &str) -> Vec<(String, Template)> {
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
            RawProperty::Template(text) => template(ctx, &Spanned::new(value.span(), text.clone()), &key),
        };
        if let Some(t) = parsed {
            out.push((name.get_ref().clone(), t));
        }
    }
    out
}

fn property_name(ctx: &mut FileCtx<'_>, name: &Spanned<String>, key: &str) {
    let text = name.get_ref();
    let bad_char = text.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | ':'));
    if text.is_empty() || bad_char || text.starts_with(['#', '!']) {
        let message = format!("invalid property name {text:?}: expected no spaces, '=' or ':', not starting with '#' or '!'");
        ctx.error(&name.span(), key, message);
    }
}

fn health(ctx: &mut FileCtx<'_>, raw: Option<&Spanned<RawHealth>>, default_timeout: Duration) -> Health {
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

fn http_check(ctx: &mut FileCtx<'_>, url: &Spanned<String>) -> HealthCheck {
    if !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://")) {
        let message = format!("expected an http:// or https:// URL like \"http://{{address}}:8080/ready\", found {:?}", url.get_ref());
        ctx.error(&url.span(), "health.http", message);
    }
    match template(ctx, url, "health.http") {
        Some(url) => HealthCheck::Http { url },
        None => HealthCheck::None,
    }
}

fn app_env(ctx: &mut FileCtx<'_>, env: &Spanned<String>, raw: &RawAppEnv, scope: &AppScope<'_>) -> (String, AppEnv) {
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
fn env_hosts(ctx: &mut FileCtx<'_>, env: &Spanned<String>, key: &str, envs: &Envs) -> Option<Vec<String>> {
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
struct Placement<'a> {
    env: &'a str,
    hosts: Option<&'a Vec<String>>,
}

impl Placement<'_> {
    fn check(&self, ctx: &mut FileCtx<'_>, names: &[Spanned<String>], key: &str, servers: &[String]) -> Vec<String> {
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

    fn known(&self, ctx: &mut FileCtx<'_>, name: &Spanned<String>, key: &str) {
        let Some(hosts) = self.hosts else { return };
        if hosts.contains(name.get_ref()) {
            return;
        }
        let known: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let (message, hint) = unknown_name("host", name.get_ref(), &format!(" in environment {}", self.env), &known);
        ctx.error_hint(&name.span(), key, message, hint);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

/// The keys a table of each file accepts, as the model says them (for the test that
/// holds the configuration reference against the code): the names serde lists when
/// it meets an unknown key in `toml`, parsed as a kai.toml, environment or app file.
#[cfg(test)]
pub(super) fn accepted_keys(file: &str, toml: &str) -> Vec<String> {
    let error = match file {
        "kai" => toml::from_str::<RawKai>(toml).err(),
        "environment" => toml::from_str::<RawEnvironment>(toml).err(),
        "app" => toml::from_str::<RawApp>(toml).err(),
        other => panic!("no file kind {other}"),
    };
    let message = error.map(|e| e.message().to_owned()).unwrap_or_default();
    let listed = message.split_once("expected one of ").map(|(_, l)| l).or_else(|| message.split_once("expected ").map(|(_, l)| l));
    // serde says "expected `a`", "expected `a` or `b`" or "expected one of `a`, `b`, `c`".
    let listed = listed.unwrap_or_default().replace(" or ", ", ");
    listed.split(", ").map(|k| k.trim().trim_matches('`').to_owned()).filter(|k| !k.is_empty()).collect()
}
