//! Shell completion: the candidates behind `COMPLETE=bash kai -- <words>` (clap_complete's
//! dynamic engine calls the functions here through `add = ...` on the arguments).
//!
//! Completion runs on every TAB, so it reads as little as it can: the names of the
//! files in `environments/` and `apps/`, and a few keys of `kai.toml`, of one
//! environment or of one app, parsed without validating anything. Versions come from
//! [`crate::version_cache`]; a list older than its TTL is refreshed from the
//! repository, but never for longer than [`REFRESH_BOUND`]. Nothing here prints an
//! error: a broken configuration or an unreachable repository means fewer candidates.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use clap::{Arg, Command};
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{EnvCompleter, Fish, Shells};
use clap_complete::CompleteEnv;
use kai_core::config::{lenient, RepoLocation};

use crate::repository::{Credentials, Limits, Repository};
use crate::settings::Settings;
use crate::version_cache::{self, Key};

/// The longest completion waits on the repository for a version list.
pub const REFRESH_BOUND: Duration = Duration::from_millis(300);

/// The longest `rollback --to` completion waits on the hosts for their releases.
pub const HOSTS_BOUND: Duration = Duration::from_secs(3);

/// The command line's definition, given by `main` (completion reads the words typed
/// against it).
static COMMAND: OnceLock<fn() -> Command> = OnceLock::new();

/// Answers a completion request (`COMPLETE=<shell>` in the environment) and exits;
/// returns at once otherwise. Called first thing in `main`, before anything slow, with
/// the command line's definition.
pub fn complete_if_asked(command: fn() -> Command) {
    let _ = COMMAND.set(command);
    CompleteEnv::with_factory(command).shells(Shells(&[&Bash, &Zsh, &Fish])).complete();
}

/// Bash, whose registration script reads the words again from the line: bash splits
/// the word under the cursor at the characters of `COMP_WORDBREAKS`, among them `@`
/// and `:`, so `jmsadmin@10.6<TAB>` would reach kai as three words and bash would then
/// offer host names. The script passes kai the words split at blanks only, and takes
/// off each answer the part before the piece bash is completing.
pub struct Bash;

impl EnvCompleter for Bash {
    fn name(&self) -> &'static str {
        "bash"
    }

    fn is(&self, name: &str) -> bool {
        name == "bash"
    }

    fn write_registration(&self, var: &str, name: &str, _bin: &str, completer: &str, buf: &mut dyn std::io::Write) -> std::io::Result<()> {
        let function = format!("_kai_complete_{}", name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
        let completer = format!("'{}'", completer.replace('\'', r"'\''"));
        let name = format!("'{}'", name.replace('\'', r"'\''"));
        write!(
            buf,
            r#"{function}() {{
    local IFS=$'\013'
    local line="${{COMP_LINE:0:COMP_POINT}}"
    local -a words
    IFS=$' \t\n' read -r -a words <<< "$line"
    if [[ -z "$line" || "$line" == *[[:blank:]] ]]; then
        words+=("")
    fi
    local index=$(( ${{#words[@]}} - 1 ))
    local before="${{words[index]%"$2"}}"
    local -a answers
    answers=( $( _CLAP_IFS="$IFS" _CLAP_COMPLETE_INDEX="$index" _CLAP_COMPLETE_COMP_TYPE="${{COMP_TYPE:-9}}" {var}="bash" {completer} -- "${{words[@]}}" ) ) || {{ unset COMPREPLY; return; }}
    COMPREPLY=()
    local answer
    for answer in "${{answers[@]}}"; do
        COMPREPLY+=("${{answer#"$before"}}")
    done
    if [[ ${{#COMPREPLY[@]}} -eq 1 && "${{COMPREPLY[0]}}" != *[=/:@] ]]; then
        compopt +o nospace 2> /dev/null
    fi
}}
if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -o nospace -o nosort -F {function} {name}
else
    complete -o nospace -F {function} {name}
fi
"#
        )
    }

    fn write_complete(
        &self,
        cmd: &mut Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        clap_complete::env::Bash.write_complete(cmd, args, current_dir, buf)
    }
}

/// Zsh, whose script works both sourced (`source <(COMPLETE=zsh kai)`) and installed as
/// `_kai` in a folder of `fpath` (the Debian package's `vendor-completions`). Installed,
/// compinit makes the file itself the completer, so on the first TAB its body only
/// defines the real completer and registers it: the line added at the end runs it then
/// too, and does nothing when the script is sourced.
pub struct Zsh;

impl EnvCompleter for Zsh {
    fn name(&self) -> &'static str {
        "zsh"
    }

    fn is(&self, name: &str) -> bool {
        name == "zsh"
    }

    fn write_registration(&self, var: &str, name: &str, bin: &str, completer: &str, buf: &mut dyn std::io::Write) -> std::io::Result<()> {
        clap_complete::env::Zsh.write_registration(var, name, bin, completer, buf)?;
        let function = format!("_clap_dynamic_completer_{}", name.replace('-', "_"));
        writeln!(buf, "\nif [[ \"${{funcstack[1]}}\" == _{bin} ]]; then\n    {function} \"$@\"\nfi")
    }

    fn write_complete(
        &self,
        cmd: &mut Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        clap_complete::env::Zsh.write_complete(cmd, args, current_dir, buf)
    }
}

/// The registration script `COMPLETE=<shell> kai` prints, for `kai completions`.
/// `completer` is how the script calls kai back (`argv[0]`, as clap_complete does).
pub fn registration(
    shell: &dyn clap_complete::env::EnvCompleter,
    name: &str,
    completer: &str,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    shell.write_registration("COMPLETE", name, name, completer, out)
}

/// Environment names: the `environments/*.toml` files, in the pipeline order of kai.toml.
pub fn environments() -> Vec<CompletionCandidate> {
    let Some(root) = context().and_then(Context::root) else { return Vec::new() };
    let names = stems(&root.join("environments"));
    let kai_toml = read(&root.join("kai.toml")).unwrap_or_default();
    lenient::in_pipeline_order(&kai_toml, names).into_iter().map(CompletionCandidate::new).collect()
}

/// Application names: the `apps/*.toml` files; after an environment, only the apps
/// placed there (with an `[env.<env>]` section).
pub fn apps() -> Vec<CompletionCandidate> {
    let Some(context) = context() else { return Vec::new() };
    let Some(root) = context.root() else { return Vec::new() };
    context.app_names(&root).into_iter().map(CompletionCandidate::new).collect()
}

/// `<app>`, `<app>-<version>` or `<app>@<version>`: app names starting with `current`;
/// once `current` names exactly one app (or reaches `<app>-`/`<app>@`), its versions
/// too, newest first. After `./`, `../` or `/`: a local build's file.
pub fn apps_and_versions(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    if ["./", "../", "/"].iter().any(|p| typed.starts_with(p)) {
        return artifact_files(&typed).into_iter().map(CompletionCandidate::new).collect();
    }
    let Some(context) = context() else { return Vec::new() };
    let Some(root) = context.root() else { return Vec::new() };
    let current = current.to_string_lossy();
    let names = context.app_names(&root);
    let matching: Vec<&String> = names.iter().filter(|name| name.starts_with(&*current)).collect();
    let mut candidates: Vec<CompletionCandidate> = matching.iter().map(|name| CompletionCandidate::new(name.as_str())).collect();
    for (app, separator, prefix) in version_requests(&names, &matching, &current) {
        let versions = context.versions(&root, app);
        candidates.extend(
            version_candidates(&versions, prefix).map(|(v, help)| CompletionCandidate::new(format!("{app}{separator}{v}")).help(help)),
        );
    }
    candidates
}

/// The folders and artifact files (`.zip`, `.jar`, `.tar.gz`) whose path starts with
/// `typed`; folders end in `/` so the next TAB goes into them. Hidden ones only when
/// asked for with a dot.
fn artifact_files(typed: &str) -> Vec<String> {
    let (dir, stem) = typed.rsplit_once('/').map_or(("", typed), |(d, s)| (d, s));
    let dir = format!("{dir}/");
    let Ok(entries) = std::fs::read_dir(if dir == "/" { "/" } else { dir.as_str() }) else { return Vec::new() };
    let mut found: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(stem) || (name.starts_with('.') && !stem.starts_with('.')) {
                return None;
            }
            let folder = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            let artifact = [".zip", ".jar", ".tar.gz"].iter().any(|e| name.ends_with(e));
            match (folder, artifact) {
                (true, _) => Some(format!("{dir}{name}/")),
                (false, true) => Some(format!("{dir}{name}")),
                _ => None,
            }
        })
        .collect();
    found.sort();
    found
}

/// `kai rollback <env> <app> --to`: the releases still on every active server of the
/// app, newest first, apart from the one running everywhere; asked of the hosts, for at
/// most [`HOSTS_BOUND`].
pub fn releases_on_servers(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(context) = context() else { return Vec::new() };
    let (Some(env), Some(app)) = (context.line.positionals.first(), context.line.positionals.get(1)) else { return Vec::new() };
    let Ok(config) = crate::config_files::load_config(&context.line.config, &context.settings) else { return Vec::new() };
    let (Some(environment), Some(app)) = (config.environments.get(env), config.apps.get(app)) else { return Vec::new() };
    let Ok(placements) = kai_core::plan::placements(&config, env, app, &[]) else { return Vec::new() };
    let active: Vec<crate::transport::Place> =
        placements.iter().filter(|p| p.role == kai_core::plan::Role::Active).map(crate::transport::Place::from).collect();
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return Vec::new() };
    let read = runtime.block_on(async {
        let transport = crate::transport::EnvTransport::open(environment, &context.settings);
        let read = tokio::time::timeout(HOSTS_BOUND, crate::fleet::probe(&transport, app, &active)).await;
        transport.close().await;
        read
    });
    runtime.shutdown_background();
    let Ok(read) = read else { return Vec::new() };
    let Some(facts) = read.into_iter().collect::<Result<Vec<_>, _>>().ok().filter(|f| !f.is_empty()) else { return Vec::new() };
    let running: Vec<&str> = facts.iter().filter_map(|f| f.current.as_deref()).collect();
    let everywhere = |release: &String| facts.iter().all(|f| f.releases.contains(release));
    let left: Vec<String> = facts[0]
        .releases
        .iter()
        .filter(|r| everywhere(r) && !(running.len() == facts.len() && running.iter().all(|c| c == r)))
        .cloned()
        .collect();
    let releases = newest_first(left);
    let prefix = current.to_string_lossy();
    releases.into_iter().filter(|r| r.starts_with(&*prefix)).map(CompletionCandidate::new).collect()
}

/// Host names of the environment named first on the line (`--only`).
pub fn hosts() -> Vec<CompletionCandidate> {
    let Some(context) = context() else { return Vec::new() };
    let (Some(root), Some(env)) = (context.root(), context.line.positionals.first()) else { return Vec::new() };
    let Some(hosts) = read(&root.join("environments").join(format!("{env}.toml"))).and_then(|t| lenient::environment_hosts(&t)) else {
        return Vec::new();
    };
    hosts.into_iter().map(CompletionCandidate::new).collect()
}

/// Which apps' versions to offer for `current`, each with the separator and the
/// version prefix typed so far: every app for which `current` is `<app>-...` or
/// `<app>@...`, and the app `current` is the only prefix of.
fn version_requests<'n>(names: &'n [String], matching: &[&'n String], current: &'n str) -> Vec<(&'n str, char, &'n str)> {
    let mut requests: Vec<(&str, char, &str)> = names
        .iter()
        .filter_map(|name| {
            let rest = current.strip_prefix(name.as_str())?;
            let separator = rest.chars().next().filter(|c| *c == '-' || *c == '@')?;
            Some((name.as_str(), separator, &rest[1..]))
        })
        .collect();
    if let [only] = matching {
        if !requests.iter().any(|(app, ..)| *app == only.as_str()) {
            requests.push((only.as_str(), '-', ""));
        }
    }
    requests
}

/// The versions (newest first) starting with `prefix`, the newest release marked.
fn version_candidates<'v>(versions: &'v [String], prefix: &'v str) -> impl Iterator<Item = (&'v str, Option<clap::builder::StyledStr>)> {
    let newest = versions.iter().find(|v| kai_core::version::MavenVersion::parse(v).is_release());
    versions.iter().filter(move |v| v.starts_with(prefix)).map(move |v| (v.as_str(), (Some(v) == newest).then(|| "newest release".into())))
}

/// Everything completion reads from its surroundings, once.
struct Context {
    settings: Settings,
    line: Line,
}

fn context() -> Option<&'static Context> {
    static CONTEXT: OnceLock<Option<Context>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            let settings = Settings::from_environment().ok()?;
            // The words after `--`, as the shell passes them; `_CLAP_COMPLETE_INDEX` is the
            // word under the cursor (bash, zsh); fish passes only the words up to it.
            let args: Vec<OsString> = std::env::args_os().collect();
            let words = args.iter().position(|a| a == "--").map_or(&args[..0], |at| &args[at + 1..]);
            let index = settings.var("_CLAP_COMPLETE_INDEX").and_then(|i| i.parse().ok()).unwrap_or(words.len().saturating_sub(1));
            let line = Line::parse(&COMMAND.get()?(), words, index);
            Some(Context { settings, line })
        })
        .as_ref()
}

impl Context {
    /// The apps of the configuration; when the line names an environment first, only
    /// those placed there.
    fn app_names(&self, root: &Path) -> Vec<String> {
        let names = stems(&root.join("apps"));
        let is_env = |env: &&String| root.join("environments").join(format!("{env}.toml")).is_file();
        // `diff A B` and `promote FROM TO` name two environments: an app of diff is in
        // either, an app of promote in both.
        let envs: Vec<&String> = match self.line.subcommand.as_deref() {
            Some("diff" | "promote") => self.line.positionals.iter().take(2).filter(is_env).collect(),
            _ => self.line.positionals.first().filter(is_env).into_iter().collect(),
        };
        if envs.is_empty() {
            return names;
        }
        let both = self.line.subcommand.as_deref() == Some("promote");
        names
            .into_iter()
            .filter(|name| {
                let placed_in = read(&root.join("apps").join(format!("{name}.toml"))).and_then(|t| lenient::app_environments(&t));
                placed_in.is_none_or(|placed_in| {
                    let placed = |env: &&String| placed_in.contains(*env);
                    if both {
                        envs.iter().all(placed)
                    } else {
                        envs.iter().any(placed)
                    }
                })
            })
            .collect()
    }

    /// The configuration repository, found as every command finds it, with the
    /// `--config` of the line being completed.
    fn root(&self) -> Option<PathBuf> {
        let settings = &self.settings;
        crate::config_files::find_root(self.line.config.as_deref(), settings.kai_config.as_deref(), &settings.cwd).ok()
    }

    /// The app's versions, newest first: from the cache, refreshed when stale.
    fn versions(&self, root: &Path, app: &str) -> Vec<String> {
        let Some(source) = VersionSource::read(root, app) else { return Vec::new() };
        let cache_dir = &self.settings.cache_dir;
        let key = source.key();
        let cached = version_cache::load(cache_dir, key);
        let now = SystemTime::now();
        if let Some(cached) = cached.as_ref().filter(|c| c.is_fresh(now, version_cache::TTL)) {
            return cached.versions.clone();
        }
        match source.fetch(&self.settings) {
            Some(listed) if version_cache::store(cache_dir, key, &listed).is_ok() => {
                version_cache::load(cache_dir, key).map(|c| c.versions).unwrap_or_default()
            }
            Some(listed) => newest_first(listed),
            None => {
                let _ = version_cache::touch(cache_dir, key, now);
                cached.map(|c| c.versions).unwrap_or_default()
            }
        }
    }
}

fn newest_first(listed: Vec<String>) -> Vec<String> {
    let mut versions: Vec<kai_core::version::MavenVersion> = listed.iter().map(|v| kai_core::version::MavenVersion::parse(v)).collect();
    kai_core::version::sort_versions(&mut versions);
    versions.iter().rev().map(|v| v.as_str().to_owned()).collect()
}

/// Where an app's versions come from, read from `kai.toml` and `apps/<app>.toml`
/// (leniently, by kai-core), with the cache key `Repository::describe` makes of it.
struct VersionSource {
    source: lenient::VersionSource,
    /// As `Repository::describe` names it: the cache key.
    repository: String,
}

impl VersionSource {
    fn read(root: &Path, app: &str) -> Option<VersionSource> {
        let (kai, own) = (read(&root.join("kai.toml"))?, read(&root.join("apps").join(format!("{app}.toml")))?);
        let source = lenient::version_source(&kai, &own, app, root)?;
        let repository = match &source.location {
            RepoLocation::Folder(path) => path.display().to_string(),
            RepoLocation::Http(base) => base.clone(),
        };
        Some(VersionSource { source, repository })
    }

    fn key(&self) -> Key<'_> {
        Key { repository: &self.repository, group: &self.source.group, artifact: &self.source.artifact }
    }

    /// The versions the repository lists now, or `None` when it does not answer
    /// within [`REFRESH_BOUND`].
    fn fetch(&self, settings: &Settings) -> Option<Vec<String>> {
        let source = &self.source;
        let credentials = match (source.username_env.as_deref(), source.password_env.as_deref()) {
            (Some(user), Some(password)) => match (settings.var(user), settings.var(password)) {
                (Some(username), Some(password)) => Some(Credentials { username: username.into(), password: password.into() }),
                _ => None,
            },
            _ => None,
        };
        let repo = Repository::new(source.location.clone(), credentials, settings.cache_dir.join("artifacts"), Limits::default()).ok()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        let listed = runtime.block_on(async { tokio::time::timeout(REFRESH_BOUND, repo.versions(&source.group, &source.artifact)).await });
        // A name lookup may still be running on a blocking thread: do not wait for it.
        runtime.shutdown_background();
        listed.ok()?.ok()
    }
}

/// A file's text; `None` when it cannot be read.
fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// The stems of the `*.toml` files of `dir`, sorted; hidden files are skipped, as
/// `config_files::read_sources` skips them.
fn stems(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file() || (t.is_symlink() && entry.path().is_file())))
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_owned())
        })
        .collect();
    names.sort();
    names
}

/// What the command line being completed says so far, apart from the word under the
/// cursor: the `--config` it names and the positional arguments of its subcommand.
#[derive(Debug, Default, PartialEq, Eq)]
struct Line {
    config: Option<PathBuf>,
    subcommand: Option<String>,
    positionals: Vec<String>,
}

impl Line {
    /// `words` starts with the program name; `current` is the index of the word
    /// under the cursor. Which options take a value comes from `cli`.
    fn parse(cli: &Command, words: &[OsString], current: usize) -> Line {
        let mut line = Line::default();
        let mut command = cli;
        let mut words = words.iter().enumerate().skip(1).filter(|(i, _)| *i != current).map(|(_, w)| w.to_string_lossy());
        while let Some(word) = words.next() {
            if word == "--" {
                break;
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, value) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v.to_owned())));
                let option = find(cli, command, |a| a.get_long() == Some(name));
                let value = match value {
                    None if option.is_some_and(takes_value) => words.next().map(std::borrow::Cow::into_owned),
                    value => value,
                };
                if name == "config" {
                    line.config = value.map(PathBuf::from);
                }
            } else if word.len() > 1 && word.starts_with('-') {
                let cluster: Vec<char> = word[1..].chars().collect();
                if let Some(at) = cluster.iter().position(|c| find(cli, command, |a| a.get_short() == Some(*c)).is_some_and(takes_value)) {
                    if at + 1 == cluster.len() {
                        words.next();
                    }
                }
            } else if let Some(sub) = command.find_subcommand(&*word).filter(|_| line.subcommand.is_none()) {
                command = sub;
                line.subcommand = Some(sub.get_name().to_owned());
            } else {
                line.positionals.push(word.into_owned());
            }
        }
        line
    }
}

/// An option of `command`, or a global one of `cli`.
fn find<'c>(cli: &'c Command, command: &'c Command, wanted: impl Fn(&Arg) -> bool) -> Option<&'c Arg> {
    command.get_arguments().find(|a| wanted(a)).or_else(|| cli.get_arguments().find(|a| a.is_global_set() && wanted(a)))
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_completes_to_folders_and_artifact_files() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["hello-1.0.zip", "hello-1.0.jar", "hello.txt", ".hidden.zip", "app.tar.gz"] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("target")).unwrap();
        let root = dir.path().display().to_string();
        let at = |typed: &str| artifact_files(&format!("{root}/{typed}"));
        let names = |found: Vec<String>| found.into_iter().map(|f| f[root.len() + 1..].to_owned()).collect::<Vec<_>>();
        assert_eq!(names(at("")), ["app.tar.gz", "hello-1.0.jar", "hello-1.0.zip", "target/"]);
        assert_eq!(names(at("hel")), ["hello-1.0.jar", "hello-1.0.zip"]);
        assert_eq!(names(at(".")), [".hidden.zip"]);
        assert!(at("nothing/").is_empty());
    }

    fn line(words: &[&str], current: usize) -> Line {
        let words: Vec<OsString> = words.iter().map(OsString::from).collect();
        Line::parse(&crate::cli::command(), &words, current)
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn line_finds_the_config_and_the_positionals() {
        let parsed = line(&["kai", "--config", "../cfg", "deploy", "--jobs", "2", "prod", "jms"], 7);
        assert_eq!(parsed.config, Some(PathBuf::from("../cfg")));
        assert_eq!(parsed.subcommand.as_deref(), Some("deploy"));
        assert_eq!(parsed.positionals, ["prod"]);
        let parsed = line(&["kai", "deploy", "--config=x", "-q", "prod", "--only", "web1", "app", ""], 8);
        assert_eq!(parsed.config, Some(PathBuf::from("x")));
        assert_eq!(parsed.positionals, ["prod", "app"]);
    }

    #[test]
    fn the_word_under_the_cursor_is_not_part_of_the_line() {
        let parsed = line(&["kai", "deploy", "pro"], 2);
        assert_eq!(parsed.subcommand.as_deref(), Some("deploy"));
        assert!(parsed.positionals.is_empty());
    }

    #[test]
    fn versions_are_offered_after_a_separator_or_for_the_only_match() {
        let names = strings(&["jms", "jmsadmin", "ssod", "ssod-grensesnitt"]);
        let all: Vec<&String> = names.iter().collect();
        let matching = |current: &str| all.iter().copied().filter(|n| n.starts_with(current)).collect::<Vec<_>>();
        let requests = |current: &'static str| version_requests(&names, &matching(current), current);
        assert_eq!(requests("jms"), []);
        assert_eq!(requests("jmsa"), [("jmsadmin", '-', "")]);
        assert_eq!(requests("jmsadmin-10."), [("jmsadmin", '-', "10.")]);
        assert_eq!(requests("jms@1"), [("jms", '@', "1")]);
        assert_eq!(requests("ssod-g"), [("ssod", '-', "g"), ("ssod-grensesnitt", '-', "")]);
        assert_eq!(requests("ssod-grensesnitt-2"), [("ssod", '-', "grensesnitt-2"), ("ssod-grensesnitt", '-', "2")]);
    }

    #[test]
    fn version_candidates_keep_the_order_and_mark_the_newest_release() {
        let versions = strings(&["11.0.0-SNAPSHOT", "10.60.0", "10.9.0"]);
        let found: Vec<_> = version_candidates(&versions, "10.").map(|(v, help)| (v, help.map(|h| h.to_string()))).collect();
        assert_eq!(found, [("10.60.0", Some("newest release".to_owned())), ("10.9.0", None)]);
    }
}
