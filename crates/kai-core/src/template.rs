//! `{placeholder}` templates in properties, health URLs and balancer names:
//! `{app}` `{env}` `{host}` `{address}` `{version}` and `{home}` (the app home); in a
//! property's value also `{secret:NAME}`, a secret's value (never shown: a template
//! shown renders it as itself).

use std::fmt;

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["app", "env", "host", "address", "version", "home"];

/// A string with `{app}`, `{env}`, `{host}`, `{address}` and `{version}` placeholders,
/// checked when parsed. `{{` and `}}` stand for literal braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
    /// `{secret:NAME}`: the value of the secret NAME.
    Secret(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    App,
    Env,
    Host,
    Address,
    Version,
    Home,
}

/// The values placeholders are replaced with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vars<'a> {
    pub app: &'a str,
    pub env: &'a str,
    pub host: &'a str,
    pub address: &'a str,
    pub version: &'a str,
    /// The app home on the host (`~user`, or an absolute path).
    pub home: &'a str,
    /// The values of the environment's secrets, where `{secret:NAME}` may be rendered
    /// (a property's value); a name without a value renders as nothing (resolving the
    /// secrets before planning refuses it first).
    pub secrets: Option<&'a Secrets>,
}

/// How a template's secrets are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendering {
    /// Their values: what is written to a host.
    Real,
    /// `{secret:NAME}`: what may be shown.
    Shown,
    /// A digest of the value salted with the environment's and the secret's names: what
    /// a fingerprint of the settings covers (a new value is a change; equal values in
    /// two environments do not digest the same).
    Digest,
}

/// Secret values by name, as the environment's source gave them.
pub type Secrets = std::collections::BTreeMap<String, Secret>;

/// A secret's value: its `Debug` form never shows it, so no log, panic or test
/// failure that prints a configuration prints a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself: for the properties written to a host, and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(not shown)")
    }
}

/// Whether `name` may name a secret: dotted words of letters, digits, `_` and `-`
/// (`db.password`, `smtp-relay.token`).
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.split('.').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

impl Template {
    /// Parses `source`; the error says which placeholder is unknown or which brace is
    /// open. `{secret:NAME}` is refused: only a property's value may hold a secret
    /// ([`Template::parse_property`]).
    pub fn parse(source: &str) -> Result<Template, String> {
        let template = Template::parse_property(source)?;
        if let Some(name) = template.secret_names().next() {
            return Err(format!("{{secret:{name}}} may only stand in a property's value, where nothing shows it"));
        }
        Ok(template)
    }

    /// Parses a property's value: [`Template::parse`], and `{secret:NAME}`.
    pub fn parse_property(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if let Some(secret) = name.strip_prefix("secret:") {
                        if !is_secret_name(secret) {
                            return Err(format!(
                                "{{secret:{secret}}}: a secret's name is dotted words of letters, digits, `_` and `-`, like db.password"
                            ));
                        }
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Secret(secret.to_owned()));
                        continue;
                    }
                    let var = match name.as_str() {
                        "app" => Var::App,
                        "env" => Var::Env,
                        "host" => Var::Host,
                        "address" => Var::Address,
                        "version" => Var::Version,
                        "home" => Var::Home,
                        _ => {
                            return Err(format!(
                                "unknown placeholder {{{name}}}; known: {} (and {{secret:NAME}} in a property)",
                                PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(" ")
                            ))
                        }
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(var));
                }
                '}' => return Err("a lone `}` (write `}}` for a literal brace)".into()),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { source: source.to_owned(), parts })
    }

    /// A template without placeholders (its text is taken literally).
    pub fn literal(text: &str) -> Template {
        Template { source: text.replace('{', "{{").replace('}', "}}"), parts: vec![Part::Text(text.to_owned())] }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names of the secrets the template uses, in order.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The text with every placeholder replaced, secrets by their values.
    pub fn render(&self, vars: &Vars<'_>) -> String {
        self.render_for(vars, Rendering::Real)
    }

    /// The text as it may be shown: every placeholder replaced, but a secret left as
    /// `{secret:NAME}`.
    pub fn render_shown(&self, vars: &Vars<'_>) -> String {
        self.render_for(vars, Rendering::Shown)
    }

    pub fn render_for(&self, vars: &Vars<'_>, rendering: Rendering) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Secret(name) => {
                    let value = vars.secrets.and_then(|s| s.get(name)).map_or("", Secret::expose);
                    match rendering {
                        Rendering::Real => out.push_str(value),
                        Rendering::Shown => out.push_str(&format!("{{secret:{name}}}")),
                        Rendering::Digest => out.push_str(&crate::digest::of(&("kai secret", vars.env, name, value))),
                    }
                }
                Part::Var(Var::App) => out.push_str(vars.app),
                Part::Var(Var::Env) => out.push_str(vars.env),
                Part::Var(Var::Host) => out.push_str(vars.host),
                Part::Var(Var::Address) => out.push_str(vars.address),
                Part::Var(Var::Version) => out.push_str(vars.version),
                Part::Var(Var::Home) => out.push_str(vars.home),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let t = Template::parse("http://{address}:8080/{app}/{env}/{host}/{version}?q={{x}}&h={home}").unwrap();
        let vars = Vars { app: "a", env: "e", host: "h", address: "10.0.0.1", version: "1.0", home: "/srv/a", secrets: None };
        assert_eq!(t.render(&vars), "http://10.0.0.1:8080/a/e/h/1.0?q={x}&h=/srv/a");
    }

    #[test]
    fn a_secret_stands_only_in_a_property_and_is_shown_as_itself() {
        let t = Template::parse_property("jdbc:postgresql://svc:{secret:db.password}@db/{env}").unwrap();
        assert_eq!(t.secret_names().collect::<Vec<_>>(), ["db.password"]);
        let secrets: Secrets = [("db.password".to_owned(), Secret::new("hunter2"))].into();
        assert_eq!(format!("{secrets:?}"), r#"{"db.password": Secret(not shown)}"#);
        let vars = Vars { env: "prod", secrets: Some(&secrets), ..Vars::default() };
        assert_eq!(t.render(&vars), "jdbc:postgresql://svc:hunter2@db/prod");
        assert_eq!(t.render_shown(&vars), "jdbc:postgresql://svc:{secret:db.password}@db/prod");
        assert_eq!(t.to_string(), "jdbc:postgresql://svc:{secret:db.password}@db/{env}");
        let err = Template::parse("http://{address}/{secret:db.password}").unwrap_err();
        assert!(err.contains("only stand in a property's value"), "{err}");
        for bad in ["{secret:}", "{secret:db..password}", "{secret:a b}", "{secret:$(id)}"] {
            assert!(Template::parse_property(bad).unwrap_err().contains("dotted words"), "{bad}");
        }
        assert!(is_secret_name("smtp-relay.token_2") && !is_secret_name(".x") && !is_secret_name(&"a".repeat(129)));
    }

    #[test]
    fn a_secrets_digest_is_salted_by_environment_and_changes_with_its_value() {
        let t = Template::parse_property("x{secret:db.password}").unwrap();
        let digest = |env: &str, value: &str| {
            let secrets: Secrets = [("db.password".to_owned(), Secret::new(value))].into();
            t.render_for(&Vars { env, secrets: Some(&secrets), ..Vars::default() }, Rendering::Digest)
        };
        assert_ne!(digest("prod", "hunter2"), digest("test", "hunter2"), "equal values in two environments");
        assert_ne!(digest("prod", "hunter2"), digest("prod", "hunter3"));
        assert!(digest("prod", "hunter2").starts_with("xsha256:") && !digest("prod", "hunter2").contains("hunter2"));
        let plain = Template::parse_property("{app}-{env}").unwrap();
        let vars = Vars { app: "a", env: "e", ..Vars::default() };
        assert_eq!(plain.render_for(&vars, Rendering::Digest), plain.render(&vars), "no secret: the same text as before");
    }

    #[test]
    fn refuses_unknown_placeholders_and_lone_braces() {
        assert!(Template::parse("{user}").unwrap_err().contains("unknown placeholder {user}"));
        assert!(Template::parse("a}b").is_err());
    }

    #[test]
    fn literal_round_trips() {
        let t = Template::literal("{not a var}");
        assert_eq!(t.render(&Vars::default()), "{not a var}");
        assert_eq!(Template::parse(t.source()).unwrap().render(&Vars::default()), "{not a var}");
    }
}
