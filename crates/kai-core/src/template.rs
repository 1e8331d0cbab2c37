//! `{placeholder}` templates in properties, health URLs and balancer names:
//! `{app}` `{env}` `{host}` `{address}` `{version}` and `{home}` (the app home).

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
}

impl Template {
    /// Parses `source`; the error says which placeholder is unknown or which brace is open.
    pub fn parse(source: &str) -> Result<Template, String> {
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
                    let var = match name.as_str() {
                        "app" => Var::App,
                        "env" => Var::Env,
                        "host" => Var::Host,
                        "address" => Var::Address,
                        "version" => Var::Version,
                        "home" => Var::Home,
                        _ => {
                            return Err(format!(
                                "unknown placeholder {{{name}}}; known: {}",
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

    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
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
        let vars = Vars { app: "a", env: "e", host: "h", address: "10.0.0.1", version: "1.0", home: "/srv/a" };
        assert_eq!(t.render(&vars), "http://10.0.0.1:8080/a/e/h/1.0?q={x}&h=/srv/a");
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
