//! One file being checked: where its problems go, how spans become lines and keys, the
//! hints, and the checks of values every file uses (durations, choices, templates,
//! commands, names, variables).

use super::*;

pub(super) struct FileCtx<'a> {
    pub(super) file: &'a SourceFile,
    pub(super) errors: &'a mut Vec<ConfigError>,
    /// The keys whose lines [`parse`](Self::parse) blanked out after a problem: already
    /// reported, so not reported again as missing.
    pub(super) blanked: BTreeSet<String>,
}

impl<'a> FileCtx<'a> {
    pub(super) fn new(file: &'a SourceFile, errors: &'a mut Vec<ConfigError>) -> FileCtx<'a> {
        FileCtx { file, errors, blanked: BTreeSet::new() }
    }

    pub(super) fn blanked(&self, key: &str) -> bool {
        self.blanked.contains(key)
    }

    /// Reads the whole file into its raw struct, recording every problem on the way:
    /// after each one (an unknown key, a value of the wrong type, a duplicate key) the
    /// lines it spans are blanked out (their bytes become spaces, so every other line
    /// and offset stays where it was) and the file is read again, so one problem never
    /// hides the next. `None` when the file cannot be read even so.
    pub(super) fn parse<T: DeserializeOwned>(&mut self) -> Option<T> {
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

    pub(super) fn at(&self, span: &Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.file.path, message).with_line(line_of(&self.file.text, span.start)).with_key(key)
    }

    pub(super) fn error(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let error = self.at(span, key, message);
        self.errors.push(error);
    }

    pub(super) fn error_hint(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>, hint: Option<String>) {
        let mut error = self.at(span, key, message);
        error.hint = hint;
        self.errors.push(error);
    }

    /// A problem with a key that is not written anywhere (so it has no line).
    pub(super) fn missing(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        let error = ConfigError::new(&self.file.path, message).with_key(key).with_hint(hint);
        self.errors.push(error);
    }
}

/// How many problems of one file are looked for before giving up on it.
pub(super) const MAX_PROBLEMS_A_FILE: usize = 32;

/// Blanks out the whole lines `span` touches (every byte but newlines becomes a
/// space), and when it starts at a table's header, the table to the next header;
/// whether anything changed.
pub(super) fn blank_lines(text: &mut String, span: &Range<usize>) -> bool {
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
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Turns toml's error (unknown key, wrong type, missing key, syntax) into ours.
pub(super) fn toml_error(file: &SourceFile, e: &toml::de::Error) -> ConfigError {
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
pub(super) fn type_mismatch(message: &str) -> Option<(String, Option<String>)> {
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
pub(super) fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

pub(super) const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "token", "api_key", "apikey"];

/// For toml's "unknown field" message: where secrets belong, or the nearest allowed key.
pub(super) fn unknown_key_hint(message: &str) -> Option<String> {
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
pub(super) fn key_path_at(text: &str, span: &Range<usize>) -> Vec<String> {
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

pub(super) struct KeySearch {
    pub(super) target: Range<usize>,
    pub(super) path: Vec<String>,
    pub(super) best: Option<(usize, Vec<String>)>,
}

impl KeySearch {
    pub(super) fn table(&mut self, table: &DeTable<'_>) {
        for (key, value) in table {
            self.path.push(key.get_ref().to_string());
            self.consider(&key.span());
            self.consider(&value.span());
            self.value(value.get_ref());
            self.path.pop();
        }
    }

    pub(super) fn value(&mut self, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.table(table),
            DeValue::Array(items) => items.iter().for_each(|item| self.value(item.get_ref())),
            _ => {}
        }
    }

    pub(super) fn consider(&mut self, span: &Range<usize>) {
        let covers = span.start <= self.target.start && self.target.end <= span.end;
        if covers && self.best.as_ref().is_none_or(|(len, _)| span.len() < *len) {
            self.best = Some((span.len(), self.path.clone()));
        }
    }
}

/// `env.prod.properties."jvm.xmx"`: parts that are not bare TOML keys are quoted.
pub(super) fn dotted(parts: &[String]) -> String {
    parts.iter().map(|p| key_part(p)).collect::<Vec<_>>().join(".")
}

pub(super) fn key_part(part: &str) -> String {
    let bare = !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        part.to_owned()
    } else {
        format!("{part:?}")
    }
}

// ---------------------------------------------------------------------------------
// Values every file uses.

pub(super) fn duration(ctx: &mut FileCtx<'_>, value: Option<&Spanned<String>>, key: &str, default: Duration) -> Duration {
    let Some(value) = value else { return default };
    if let Ok(d) = humantime::parse_duration(value.get_ref().trim()) {
        return d;
    }
    let message = format!("expected a duration like \"60s\", found {:?}", value.get_ref());
    ctx.error(&value.span(), key, message);
    default
}

/// One of a fixed set of words.
pub(super) fn choice<T: Copy>(ctx: &mut FileCtx<'_>, value: Option<&Spanned<String>>, key: &str, choices: &[(&str, T)], default: T) -> T {
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

pub(super) fn template(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) -> Option<Template> {
    match Template::parse(value.get_ref()) {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.error(&value.span(), key, format!("invalid template {:?}: {e}", value.get_ref()));
            None
        }
    }
}

/// A property's value: a [`template`] that may also hold `{secret:NAME}`.
pub(super) fn property_template(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) -> Option<Template> {
    match Template::parse_property(value.get_ref()) {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.error(&value.span(), key, format!("invalid template {:?}: {e}", value.get_ref()));
            None
        }
    }
}

pub(super) fn command(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str) -> Vec<String> {
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
pub(super) fn identifier(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str, what: &str) {
    if let Some(problem) = ident::problem(value.get_ref()) {
        ctx.error(&value.span(), key, format!("invalid {what} {:?}: {problem}", value.get_ref()));
    }
}

/// The name of an environment variable holding a secret. The value is never echoed:
/// it may be the secret itself, written in the wrong place.
pub(super) fn env_var(ctx: &mut FileCtx<'_>, value: Option<&Spanned<String>>, key: &str) -> Option<String> {
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
pub(super) fn credentials(
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
pub(super) fn coordinate(ctx: &mut FileCtx<'_>, value: &Spanned<String>, key: &str, what: &str) {
    let s = value.get_ref();
    let valid = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        ctx.error(&value.span(), key, format!("expected a Maven {what} (letters, digits, '.', '_', '-'), found {s:?}"));
    }
}

pub(super) fn resolve(root: &Path, path: &str) -> PathBuf {
    root.join(path).components().collect()
}

pub(super) fn did_you_mean(name: &str) -> String {
    format!("did you mean {name:?}?")
}

/// The candidate closest to `name`, if it is close enough to be a typo.
pub(super) fn nearest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    crate::suggest::nearest(name, candidates).first().copied()
}

pub(super) fn unknown_name(kind: &str, name: &str, place: &str, known: &[&str]) -> (String, Option<String>) {
    let message = if known.is_empty() {
        format!("unknown {kind} {name:?}{place} (there are none)")
    } else {
        format!("unknown {kind} {name:?}{place} (expected one of: {})", known.join(", "))
    };
    (message, nearest(name, known.iter().copied()).map(did_you_mean))
}
