//! Shell completion through the real protocol, as the shells call it:
//! `COMPLETE=<shell> kai -- <words>` with `_CLAP_COMPLETE_INDEX` (the word under the
//! cursor) and `_CLAP_IFS` (the separator of the answers); `kai completions`, `kai
//! init` and `kai man`.
//!
//! Every test builds its own configuration repository and folder Maven repository in
//! a temporary folder, with HOME and XDG_CACHE_HOME pinned inside it.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

const KAI: &str = env!("CARGO_BIN_EXE_kai");
const GROUP: &str = "org.example.services";
const JMSADMIN: [&str; 6] = ["10.9.0", "10.10.0", "10.60.0", "10.61.0-SNAPSHOT", "9.99.1", "10.10.1-rc1"];

/// A configuration repository (`config/`), a folder Maven repository (`repo/`) and a
/// cache folder (`cache/`).
struct World {
    dir: TempDir,
}

impl World {
    /// Environments prod (app01..app03, lb01) and test (test01); apps jmsadmin,
    /// jmsbroker, ssod and ssod-grensesnitt (artifact `ssod-gs`).
    fn new() -> World {
        let world = World { dir: tempfile::tempdir().expect("temporary folder") };
        world.write_kai_toml("../repo");
        world.write("environments/prod.toml", &environment(&["app01", "app02", "app03", "lb01"]));
        world.write("environments/test.toml", &environment(&["test01"]));
        world.write("environments/.#prod.toml", "editor leftover");
        world.write("apps/jmsadmin.toml", &app("", &["app01", "app02"]));
        world.write("apps/jmsbroker.toml", &app("", &["app03"]));
        world.write("apps/ssod.toml", &app("", &["app01"]));
        world.write("apps/ssod-grensesnitt.toml", &app("artifact = \"ssod-gs\"\n", &["app02"]));
        world.publish("jmsadmin", &JMSADMIN);
        world.publish("ssod-gs", &["1.0", "2.0", "1.5"]);
        world.publish("ssod", &["3.1"]);
        world
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn write(&self, file: &str, text: &str) {
        let path = self.config().join(file);
        fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
        fs::write(path, text).expect("write");
    }

    fn write_kai_toml(&self, url: &str) {
        self.write("kai.toml", &format!("[repository]\nurl = \"{url}\"\ngroup = \"{GROUP}\"\n"));
    }

    /// Version folders in the Maven layout (no maven-metadata.xml: kai lists the folders).
    fn publish(&self, artifact: &str, versions: &[&str]) {
        for version in versions {
            let dir = self.dir.path().join("repo").join(GROUP.replace('.', "/")).join(artifact).join(version);
            fs::create_dir_all(dir).expect("create version folder");
        }
    }

    fn unpublish(&self, artifact: &str) {
        fs::remove_dir_all(self.dir.path().join("repo").join(GROUP.replace('.', "/")).join(artifact)).expect("remove artifact");
    }

    /// `kai` with the cwd in the configuration repository and the environment pinned.
    fn kai(&self) -> Command {
        self.command(KAI)
    }

    /// `program`, as [`World::kai`] runs kai.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.config())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("USER", "tester")
            .env("XDG_CACHE_HOME", self.cache());
        command
    }

    /// Completes the last of `words` (after `kai`) the way bash does.
    fn complete(&self, words: &[&str]) -> Vec<String> {
        self.complete_in("bash", self.kai(), words)
    }

    fn complete_in(&self, shell: &str, mut command: Command, words: &[&str]) -> Vec<String> {
        let output = run_completion(shell, &mut command, words);
        assert!(output.status.success(), "{words:?}: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{words:?}: nothing on stderr");
        answers(shell, &output.stdout)
    }
}

/// Runs one completion request: bash and zsh get the index of the word under the
/// cursor, fish only the words up to it.
fn run_completion(shell: &str, command: &mut Command, words: &[&str]) -> Output {
    command.env("COMPLETE", shell).arg("--").arg("kai").args(words);
    match shell {
        "bash" => {
            command.env("_CLAP_COMPLETE_INDEX", words.len().to_string()).env("_CLAP_IFS", "\u{b}").env("_CLAP_COMPLETE_COMP_TYPE", "9")
        }
        "zsh" => command.env("_CLAP_COMPLETE_INDEX", words.len().to_string()).env("_CLAP_IFS", "\n"),
        _ => command,
    };
    command.output().expect("run kai")
}

/// The values the shell would offer (fish and zsh add a description after a tab or a colon).
fn answers(shell: &str, stdout: &[u8]) -> Vec<String> {
    let text = String::from_utf8(stdout.to_vec()).expect("utf-8");
    assert!(!text.contains('\u{1b}'), "no terminal escapes: {text:?}");
    let separator = if shell == "bash" { '\u{b}' } else { '\n' };
    text.split(separator)
        .filter(|s| !s.is_empty())
        .map(|s| match shell {
            "fish" => s.split('\t').next().unwrap_or(s).to_owned(),
            "zsh" => s.split(':').next().unwrap_or(s).to_owned(),
            _ => s.to_owned(),
        })
        .collect()
}

fn environment(hosts: &[&str]) -> String {
    let mut text = String::from("transport = \"local\"\n\n[hosts]\n");
    for (i, host) in hosts.iter().enumerate() {
        text.push_str(&format!("{host} = \"127.0.0.{}\"\n", i + 1));
    }
    text + "\n[balancer]\nkind = \"none\"\n"
}

fn app(extra: &str, servers: &[&str]) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "{extra}packaging = \"zip\"\nuser = \"svc\"\nstart = \"bin/start.sh\"\nstop = \"bin/stop.sh\"\n\n[env.prod]\nservers = [{}]\n",
        servers.join(", ")
    )
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn with_prefix(prefix: &str, values: &[&str]) -> Vec<String> {
    values.iter().map(|v| format!("{prefix}{v}")).collect()
}

/// jmsadmin's versions, newest first in Maven order.
const JMSADMIN_NEWEST_FIRST: [&str; 6] = ["10.61.0-SNAPSHOT", "10.60.0", "10.10.1-rc1", "10.10.0", "10.9.0", "9.99.1"];

#[test]
fn subcommands_and_flags() {
    let world = World::new();
    let commands = world.complete(&["c"]);
    assert_eq!(commands, ["check", "completions"], "hidden commands are not offered");
    let flags = world.complete(&["deploy", "--d"]);
    assert_eq!(flags, ["--dry-run"]);
    assert_eq!(world.complete(&["deploy", "prod", "--al"]), ["--all", "--allow-dirty"]);
    assert_eq!(world.complete(&["plan", "prod", "--al"]), ["--all", "--allow-dirty"]);
    assert_eq!(world.complete(&["deploy", "prod", "--all", "--on"]), ["--only"], "flags go on after --all");
}

#[test]
fn environments_are_the_files_of_environments() {
    let world = World::new();
    assert_eq!(world.complete(&["deploy", "p"]), ["prod"]);
    let everything = world.complete(&["plan", ""]);
    assert!(everything.starts_with(&strings(&["prod", "test"])), "{everything:?}");
    assert_eq!(world.complete(&["exec", "t"]), ["test"]);
}

#[test]
fn environments_come_in_the_pipeline_order_of_kai_toml() {
    let world = World::new();
    world.write("environments/demo.toml", &environment(&["demo01"]));
    assert_eq!(world.complete(&["status", ""])[..3], strings(&["demo", "prod", "test"]), "no list: alphabetical");
    world.write("kai.toml", &format!("environments = [\"test\", \"prod\"]\n[repository]\nurl = \"../repo\"\ngroup = \"{GROUP}\"\n"));
    assert_eq!(world.complete(&["status", ""])[..3], strings(&["test", "prod", "demo"]));
    assert_eq!(world.complete(&["diff", ""])[..3], strings(&["test", "prod", "demo"]), "the candidates of diff");
    assert_eq!(world.complete(&["promote", "test", ""])[..3], strings(&["test", "prod", "demo"]), "and of promote");
}

#[test]
fn applications_by_prefix() {
    let world = World::new();
    assert_eq!(world.complete(&["deploy", "prod", "jms"]), ["jmsadmin", "jmsbroker"]);
    assert_eq!(world.complete(&["plan", "prod", "jmsadmin-10.10.0", "jmsb"]), ["jmsbroker"], "nothing published: no versions");
    assert_eq!(world.complete(&["versions", "ss"]), ["ssod", "ssod-grensesnitt"]);
    assert_eq!(world.complete(&["exec", "prod", "jmsa"]), ["jmsadmin"], "exec takes a bare app");
}

#[test]
fn versions_after_app_dash_newest_first_in_maven_order() {
    let world = World::new();
    assert_eq!(world.complete(&["deploy", "prod", "jmsadmin-"]), with_prefix("jmsadmin-", &JMSADMIN_NEWEST_FIRST));
    assert_eq!(world.complete(&["deploy", "prod", "jmsadmin-10.1"]), with_prefix("jmsadmin-", &["10.10.1-rc1", "10.10.0"]));
    assert_eq!(world.complete(&["plan", "prod", "jmsadmin@9"]), ["jmsadmin@9.99.1"]);
}

#[test]
fn the_only_matching_app_comes_with_its_versions() {
    let world = World::new();
    let mut expected = strings(&["jmsadmin"]);
    expected.extend(with_prefix("jmsadmin-", &JMSADMIN_NEWEST_FIRST));
    assert_eq!(world.complete(&["deploy", "prod", "jmsa"]), expected);
}

#[test]
fn app_names_with_dashes_split_at_the_longest_name() {
    let world = World::new();
    assert_eq!(world.complete(&["deploy", "prod", "ssod-grensesnitt-"]), with_prefix("ssod-grensesnitt-", &["2.0", "1.5", "1.0"]));
    let mut grensesnitt = strings(&["ssod-grensesnitt"]);
    grensesnitt.extend(with_prefix("ssod-grensesnitt-", &["2.0", "1.5", "1.0"]));
    assert_eq!(world.complete(&["deploy", "prod", "ssod-g"]), grensesnitt, "no version of ssod starts with a letter");
    let both = world.complete(&["deploy", "prod", "ssod-"]);
    assert_eq!(both[..2], ["ssod-grensesnitt", "ssod-3.1"], "ssod's versions and the other app: {both:?}");
    let ssod = world.complete(&["deploy", "prod", "ssod"]);
    assert_eq!(ssod, ["ssod", "ssod-grensesnitt"]);
}

#[test]
fn hosts_of_the_named_environment_after_only() {
    let world = World::new();
    assert_eq!(world.complete(&["deploy", "prod", "--only", "app"]), ["app01", "app02", "app03"]);
    assert_eq!(world.complete(&["deploy", "prod", "--only", "app01,app0"]), ["app01,app01", "app01,app02", "app01,app03"]);
    assert_eq!(world.complete(&["plan", "test", "jmsadmin", "--only", ""]), ["test01"]);
    assert_eq!(world.complete(&["exec", "prod", "--only", "l"]), ["lb01"]);
    assert_eq!(world.complete(&["deploy", "nowhere", "--only", ""]), Vec::<String>::new());
}

#[test]
fn the_configuration_comes_from_the_line_then_kai_config_then_the_cwd() {
    let world = World::new();
    let elsewhere = tempfile::tempdir().expect("temporary folder");
    let config = world.config().display().to_string();
    let mut from_elsewhere = world.kai();
    from_elsewhere.current_dir(elsewhere.path());
    assert_eq!(world.complete_in("bash", from_elsewhere, &["--config", &config, "deploy", "p"]), ["prod"]);
    let mut with_env = world.kai();
    with_env.current_dir(elsewhere.path()).env("KAI_CONFIG", &config);
    assert_eq!(world.complete_in("bash", with_env, &["deploy", "prod", "--only", "a"]), ["app01", "app02", "app03"]);
    let mut nested = world.kai();
    nested.current_dir(world.config().join("apps"));
    assert_eq!(world.complete_in("bash", nested, &["deploy", "te"]), ["test"]);
    let mut nothing = world.kai();
    nothing.current_dir(elsewhere.path());
    assert_eq!(world.complete_in("bash", nothing, &["deploy", "p"]), Vec::<String>::new(), "no configuration: no candidates, no error");
}

#[test]
fn zsh_and_fish_speak_the_same_protocol() {
    let world = World::new();
    assert_eq!(
        world.complete_in("zsh", world.kai(), &["deploy", "prod", "jmsadmin-10.6"]),
        with_prefix("jmsadmin-", &["10.61.0-SNAPSHOT", "10.60.0"])
    );
    assert_eq!(
        world.complete_in("fish", world.kai(), &["deploy", "prod", "jmsadmin-10.6"]),
        with_prefix("jmsadmin-", &["10.61.0-SNAPSHOT", "10.60.0"])
    );
    assert_eq!(world.complete_in("fish", world.kai(), &["deploy", "prod", "--only", "app0"]), ["app01", "app02", "app03"]);
}

#[test]
fn versions_come_from_the_cache_while_it_is_fresh_and_are_refreshed_after_the_ttl() {
    let world = World::new();
    assert_eq!(world.complete(&["deploy", "prod", "ssod@"]), ["ssod@3.1"]);
    world.publish("ssod", &["3.2"]);
    assert_eq!(world.complete(&["deploy", "prod", "ssod@"]), ["ssod@3.1"], "fresh cache: the repository is not asked");
    let file = cache_file(&world.cache(), "ssod");
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options().append(true).open(&file).expect("open cache file").set_modified(old).expect("age it");
    assert_eq!(world.complete(&["deploy", "prod", "ssod@"]), ["ssod@3.2", "ssod@3.1"], "stale cache: refreshed");
}

#[test]
fn kai_versions_fills_the_cache_that_completion_reads() {
    let world = World::new();
    let listed = world.kai().args(["versions", "jmsadmin"]).output().expect("run kai versions");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let text = fs::read_to_string(cache_file(&world.cache(), "jmsadmin")).expect("cache file written");
    let cached: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(cached, JMSADMIN_NEWEST_FIRST);
    world.unpublish("jmsadmin");
    assert_eq!(world.complete(&["deploy", "prod", "jmsadmin-10.6"]), with_prefix("jmsadmin-", &["10.61.0-SNAPSHOT", "10.60.0"]));
}

#[test]
fn cold_cache_and_a_repository_that_never_answers_give_no_versions_quickly_and_quietly() {
    let world = World::new();
    // Accepts connections and never answers: completion must not wait for it.
    let silent = TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = silent.local_addr().expect("address");
    world.write_kai_toml(&format!("http://{address}/maven"));
    let started = Instant::now();
    let answers = world.complete(&["deploy", "prod", "jmsadmin-"]);
    let elapsed = started.elapsed();
    assert_eq!(answers, Vec::<String>::new());
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert!(!cache_file(&world.cache(), "jmsadmin").exists(), "nothing cached");

    // A refused connection, and the app names still come.
    let refused = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = refused.local_addr().expect("address").port();
    drop(refused);
    world.write_kai_toml(&format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    assert_eq!(world.complete(&["deploy", "prod", "jmsa"]), ["jmsadmin"]);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    drop(silent);
}

#[test]
fn completions_prints_what_complete_env_prints() {
    let world = World::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = world.kai().args(["completions", shell]).output().expect("run kai completions");
        assert!(script.status.success(), "{shell}: {}", String::from_utf8_lossy(&script.stderr));
        let registration = world.kai().env("COMPLETE", shell).output().expect("run COMPLETE=shell kai");
        assert_eq!(String::from_utf8_lossy(&script.stdout), String::from_utf8_lossy(&registration.stdout), "{shell}");
        assert!(String::from_utf8_lossy(&script.stdout).contains(KAI), "{shell}: the script calls this kai back");
    }
    let unknown = world.kai().args(["completions", "tcsh"]).output().expect("run kai completions");
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn init_writes_a_starter_that_passes_check_and_refuses_to_overwrite() {
    let world = World::new();
    let target = world.dir.path().join("new-config");
    let init = world.kai().args(["init"]).arg(&target).output().expect("run kai init");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    for file in ["kai.toml", "environments/test.toml", "apps/hello.toml"] {
        let text = fs::read_to_string(target.join(file)).expect(file);
        assert_every_key_is_commented(file, &text);
    }
    let readme = fs::read_to_string(target.join("secrets/README")).expect("secrets/README");
    assert!(readme.contains("kai secrets set") && readme.contains("secrets/recipients"), "{readme}");
    let environment = fs::read_to_string(target.join("environments/test.toml")).expect("the environment");
    assert!(environment.contains("# [secrets]\n# command = "), "a commented [secrets] example: {environment}");
    let ignored = fs::read_to_string(target.join(".gitignore")).expect(".gitignore");
    assert!(ignored.lines().any(|l| l == ".kai/"), "kai's local state stays out of git: {ignored}");
    let check = world.kai().arg("--config").arg(&target).arg("check").output().expect("run kai check");
    assert!(check.status.success(), "{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok (1 environment, 2 hosts, 1 application)"));

    fs::write(target.join("kai.toml"), "# mine\n").expect("write");
    let again = world.kai().args(["init"]).arg(&target).output().expect("run kai init");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a kai.toml"), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(fs::read_to_string(target.join("kai.toml")).expect("read"), "# mine\n");

    let here = tempfile::tempdir().expect("temporary folder");
    let in_cwd = world.kai().current_dir(here.path()).arg("init").output().expect("run kai init");
    assert!(in_cwd.status.success(), "{}", String::from_utf8_lossy(&in_cwd.stderr));
    assert!(here.path().join("kai.toml").is_file());
}

/// Every `key = value` line follows a comment line (or a commented-out key).
fn assert_every_key_is_commented(file: &str, text: &str) {
    let mut previous = "";
    for line in text.lines() {
        let key = !line.starts_with('#') && !line.starts_with('[') && line.contains(" = ");
        if key {
            assert!(previous.starts_with('#') || previous.contains(" = "), "{file}: no comment before {line:?}");
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
}

#[test]
fn man_page_in_roff_without_colors() {
    let world = World::new();
    let page = world.kai().arg("man").output().expect("run kai man");
    assert!(page.status.success());
    let text = String::from_utf8(page.stdout).expect("utf-8");
    assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{}", &text[..80.min(text.len())]);
    assert!(text.contains(".TH kai 1"), "{text}");
    assert!(text.contains("completions"), "{text}");
    assert!(!text.contains('\u{1b}'));
    let dir = world.dir.path().join("man");
    let written = world.kai().arg("man").arg("--dir").arg(&dir).output().expect("run kai man --dir");
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    for page in ["man1/kai.1", "man1/kai-deploy.1", "man1/kai-init.1", "man1/kai-man.1", "man5/kai.toml.5"] {
        assert!(dir.join(page).is_file(), "{page} was not written");
    }
    let toml = world.kai().args(["man", "kai.toml"]).output().expect("run kai man kai.toml");
    let toml = String::from_utf8(toml.stdout).expect("utf-8");
    assert!(toml.starts_with(".TH KAI.TOML 5") && toml.contains("repository.url"), "{toml}");
    let deploy = world.kai().args(["man", "deploy"]).output().expect("run kai man deploy");
    assert!(String::from_utf8_lossy(&deploy.stdout).contains(".TH kai-deploy 1"));
    let unknown = world.kai().args(["man", "deplyo"]).output().expect("run kai man deplyo");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("kai.toml"));
    let help = world.kai().arg("--help").output().expect("run kai --help");
    assert!(String::from_utf8_lossy(&help.stdout).lines().any(|l| l.trim_start().starts_with("man ")), "kai man is listed in --help");
}

/// The cache file of `artifact` (any repository).
fn cache_file(cache: &Path, artifact: &str) -> PathBuf {
    let dir = cache.join("kai/versions");
    let prefix = format!("{GROUP}:{artifact}@");
    fs::read_dir(&dir)
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
        })
        .unwrap_or_else(|| dir.join(format!("{prefix}missing")))
}

#[test]
fn rollback_to_offers_the_releases_still_on_every_server() {
    let world = World::new();
    let release = |host: &str, versions: &[&str], current: &str| {
        let home = world.config().join(".kai/hosts").join(host).join("home/svc");
        for version in versions {
            fs::create_dir_all(home.join("releases").join(version)).expect("release folder");
        }
        std::os::unix::fs::symlink(format!("releases/{current}"), home.join("current")).expect("current");
    };
    release("app01", &["10.9.0", "10.10.0", "10.60.0"], "10.60.0");
    release("app02", &["10.10.0", "10.60.0"], "10.60.0");

    assert_eq!(world.complete(&["rollback", "prod", "jmsa"]), ["jmsadmin"], "a bare app: no versions");
    assert_eq!(world.complete(&["rollback", "prod", "jmsadmin", "--to", ""]), ["10.10.0"], "on both servers, not the running one");
    assert_eq!(world.complete(&["rollback", "prod", "jmsadmin", "--to", "10.9"]), Vec::<String>::new());
    assert_eq!(world.complete(&["rollback", "prod", "jmsbroker", "--to", ""]), Vec::<String>::new(), "nothing installed");
    assert_eq!(world.complete(&["rollback", "prod", "jmsadmin", "--only", "app03,a"]), ["app03,app01", "app03,app02", "app03,app03"]);
}

#[test]
fn apps_offered_are_those_placed_in_the_environment_typed() {
    let world = World::new();
    world.write("apps/tester.toml", &app("", &["app01"]).replace("[env.prod]", "[env.test]").replace("app01", "test01"));
    assert_eq!(world.complete(&["deploy", "test", "t"]), ["tester"]);
    assert_eq!(world.complete(&["deploy", "prod", "t"]), Vec::<String>::new());
    assert_eq!(world.complete(&["status", "test", "j"]), Vec::<String>::new());
    assert_eq!(world.complete(&["status", "prod", "j"]), ["jmsadmin", "jmsbroker"]);
    assert_eq!(world.complete(&["versions", "t"]), ["tester"], "no environment on the line: every app");
}

/// `<app>@<version>` typed into real bash, zsh and fish: TAB completes the version (bash
/// would otherwise split the word at `@` and offer host names); after `./`, a local
/// build's folder and file. zsh also with the script installed in fpath, not sourced.
#[test]
fn app_at_version_completes_in_real_bash_zsh_and_fish() {
    let world = World::new();
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/shells/type.py");
    let lines = [
        ("kai deploy prod jmsadmin@9", "deploy prod jmsadmin@9.99.1"),
        ("kai deploy prod ssod-grensesnitt-1.", "deploy prod ssod-grensesnitt-1."),
        ("kai deploy prod ssod@", "deploy prod ssod@3.1"),
        ("kai status pr", "status prod"),
        ("kai deploy prod ./targ", "deploy prod ./target/"),
        ("kai deploy prod ./target/jms", "deploy prod ./target/jmsadmin-10.61.0-SNAPSHOT.zip"),
    ];
    fs::create_dir_all(world.config().join("target/classes")).expect("a build folder");
    fs::write(world.config().join("target/jmsadmin-10.61.0-SNAPSHOT.zip"), "a build").expect("a build");
    // zsh-fpath: the script installed as `_kai` in fpath, as the Debian package does;
    // the first line is the first TAB of that shell.
    for shell in ["bash", "zsh", "zsh-fpath", "fish"] {
        let output = world
            .command("python3")
            .arg(&driver)
            .arg(shell)
            .arg(KAI)
            .args(lines.iter().map(|(typed, _)| typed))
            .output()
            .expect("run python3");
        assert!(output.status.success(), "{shell} could not be driven (is it installed?):\n{}", String::from_utf8_lossy(&output.stderr));
        let completed: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
        assert_eq!(completed, lines.map(|(_, c)| c.to_owned()), "{shell}: each line, then TAB");
    }
}

#[test]
fn status_and_history_complete_environments_and_apps() {
    let world = World::new();
    assert_eq!(world.complete(&["status", "pr"]), ["prod"]);
    assert_eq!(world.complete(&["status", "prod", "jmsadmin", "jmsb"]), ["jmsbroker"]);
    assert_eq!(world.complete(&["history", "t"]), ["test"]);
    assert_eq!(world.complete(&["history", "prod", "ssod-"]), ["ssod-grensesnitt"]);
}

#[test]
fn ps_lock_and_unlock_complete_environments_and_apps() {
    let world = World::new();
    assert_eq!(world.complete(&["ps", "pr"]), ["prod"]);
    assert_eq!(world.complete(&["ps", "prod", "jmsb"]), ["jmsbroker"]);
    assert_eq!(world.complete(&["lock", "prod", "jmsa"]), ["jmsadmin"]);
    assert_eq!(world.complete(&["unlock", "te"]), ["test"]);
}

#[test]
fn diff_and_promote_complete_two_environments_then_apps() {
    let world = World::new();
    assert_eq!(world.complete(&["promote", "te"]), ["test"]);
    assert_eq!(world.complete(&["promote", "test", "pr"]), ["prod"]);
    assert_eq!(world.complete(&["diff", "test", "prod", "jmsb"]), ["jmsbroker"]);
    assert_eq!(world.complete(&["plan", "prod", "--from", "te"]), ["test"]);
}
