//! The files as written: `Raw*` structs that mirror the TOML exactly, so that unknown keys
//! and wrong types are refused by serde with the span of the offending text.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKai {
    /// The pipeline order environments are listed in.
    pub(super) environments: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) repository: RawRepository,
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    pub(super) notify: Option<RawNotify>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepository {
    pub(super) url: Spanned<String>,
    pub(super) group: Option<Spanned<String>>,
    pub(super) username_env: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) keep_releases: Option<Spanned<i64>>,
    pub(super) fetch: Option<Spanned<String>>,
    pub(super) health_timeout: Option<Spanned<String>>,
    pub(super) start_timeout: Option<Spanned<String>>,
    pub(super) stop_timeout: Option<Spanned<String>>,
    pub(super) fetch_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) email: Option<RawEmail>,
    pub(super) webhook: Option<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmail {
    pub(super) smtp: Spanned<String>,
    pub(super) tls: Option<Spanned<String>>,
    pub(super) from: Spanned<String>,
    pub(super) to: Spanned<Vec<Spanned<String>>>,
    pub(super) username_env: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) url_env: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironment {
    #[serde(default)]
    pub(super) protected: bool,
    #[serde(default)]
    pub(super) allow_local: bool,
    pub(super) transport: Option<Spanned<String>>,
    pub(super) ssh_config: Option<Spanned<String>>,
    pub(super) known_hosts: Option<Spanned<String>>,
    pub(super) ssh_persist: Option<Spanned<String>>,
    pub(super) rollout: Option<RawRollout>,
    pub(super) on_failure: Option<Spanned<String>>,
    pub(super) canary: Option<Spanned<RawCanary>>,
    pub(super) hosts: Spanned<BTreeMap<Spanned<String>, Spanned<RawHost>>>,
    pub(super) balancer: Option<RawBalancer>,
    pub(super) notify: Option<RawNotify>,
    pub(super) secrets: Option<RawSecrets>,
}

/// `[secrets]`: where an environment's secrets come from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecrets {
    pub(super) command: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

/// `app01 = "address"` or `app01 = { address = "...", port = 22, ... }`.
pub(super) enum RawHost {
    Address(String),
    Table(RawHostTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHostTable {
    pub(super) address: Spanned<String>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) login: Option<Spanned<String>>,
    pub(super) root: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollout {
    pub(super) batch: Option<Spanned<RawBatch>>,
    #[serde(default)]
    pub(super) canary: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    pub(super) hosts: Option<Spanned<RawBatch>>,
    pub(super) window: Option<Spanned<String>>,
    pub(super) min_requests: Option<Spanned<i64>>,
    pub(super) error_factor: Option<Spanned<f64>>,
    pub(super) error_margin: Option<Spanned<String>>,
    pub(super) slowdown: Option<Spanned<f64>>,
    pub(super) slowdown_margin: Option<Spanned<String>>,
    pub(super) on_low_traffic: Option<Spanned<String>>,
    pub(super) max_windows: Option<Spanned<i64>>,
    pub(super) judge_command: Option<Spanned<String>>,
}

/// `batch = 2` or `batch = "25%"`.
pub(super) enum RawBatch {
    Count(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBalancer {
    pub(super) kind: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) proxies: Vec<Spanned<String>>,
    pub(super) admin: Option<Spanned<String>>,
    pub(super) backend: Option<Spanned<String>>,
    pub(super) server: Option<Spanned<String>>,
    pub(super) drain_wait: Option<Spanned<String>>,
    pub(super) settle: Option<Spanned<String>>,
    pub(super) drain_timeout: Option<Spanned<String>>,
    pub(super) drain_command: Option<Spanned<String>>,
    pub(super) undrain_command: Option<Spanned<String>>,
    pub(super) manager: Option<Spanned<String>>,
    pub(super) worker: Option<Spanned<String>>,
    /// httpd's name for the app's pool (`balancer://<name>`); `backend` for HAProxy.
    pub(super) balancer: Option<Spanned<String>>,
    pub(super) username_env: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) reload: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub(super) group: Option<Spanned<String>>,
    pub(super) artifact: Option<Spanned<String>>,
    pub(super) classifier: Option<Spanned<String>>,
    pub(super) packaging: Option<Spanned<String>>,
    pub(super) user: Option<Spanned<String>>,
    pub(super) home: Option<Spanned<String>>,
    pub(super) start: Option<Spanned<String>>,
    pub(super) stop: Option<Spanned<String>>,
    pub(super) start_timeout: Option<Spanned<String>>,
    pub(super) stop_timeout: Option<Spanned<String>>,
    pub(super) properties_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) properties: RawProperties,
    pub(super) health: Option<Spanned<RawHealth>>,
    pub(super) rollout: Option<RawRollout>,
    pub(super) on_failure: Option<Spanned<String>>,
    pub(super) canary: Option<Spanned<RawCanary>>,
    #[serde(default)]
    pub(super) env: BTreeMap<Spanned<String>, RawAppEnv>,
}

pub(super) type RawProperties = BTreeMap<Spanned<String>, Spanned<RawProperty>>;

/// A property value: a string is a template, anything else is literal text.
pub(super) enum RawProperty {
    Template(String),
    Literal(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub(super) http: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) stable: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppEnv {
    pub(super) servers: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) standby: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) properties: RawProperties,
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
