//! The `--json` contract (docs/json.md): every document the real kai binary prints on
//! stdout, on success and on failure, is exactly one JSON document that matches its
//! schema in docs/schemas/. The schemas forbid fields they do not name, so a field added,
//! renamed or retyped in the code without its schema fails here; and every schema must be
//! met by at least one run, so none goes stale.

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value};
use support::{Artifact, Run, World, ENV};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas")
}

/// The schemas in docs/schemas, by name (`run` for `run.schema.json`), sorted.
fn schema_names() -> Vec<String> {
    let dir = schema_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".schema.json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Checks `document` against docs/schemas/`schema`.schema.json; the error says where and why.
fn validate(schema: &str, document: &Value) -> Result<(), String> {
    let path = schema_dir().join(format!("{schema}.schema.json"));
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let index = compiler.compile(&path.display().to_string(), &mut schemas).map_err(|e| format!("{e:#}"))?;
    schemas.validate(document, index).map_err(|e| format!("{e:#}"))
}

/// Validates what runs print and remembers which schemas were met.
#[derive(Default)]
struct Contract {
    met: Mutex<BTreeSet<String>>,
}

impl Contract {
    /// The run ended with `code` and its whole stdout is one JSON document matching
    /// `schema`; returns the document.
    #[track_caller]
    fn check(&self, run: &Run, code: i32, schema: &str) -> Value {
        run.assert_exit(code);
        let document: Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not exactly one JSON document ({e}): {run:?}"));
        if let Err(e) = validate(schema, &document) {
            panic!("stdout does not match docs/schemas/{schema}.schema.json:\n{e}\n{run:?}");
        }
        self.met.lock().expect("the set of schemas met").insert(schema.to_owned());
        document
    }

    /// The run failed with the error document of `kind`; returns its `error`.
    #[track_caller]
    fn error(&self, run: &Run, code: i32, kind: &str) -> Value {
        let document = self.check(run, code, "error");
        assert_eq!(document["error"]["kind"], kind, "{run:?}");
        document["error"].clone()
    }
}

/// Every node of `schema` that names properties, with its JSON pointer.
fn objects_with_properties<'s>(schema: &'s Value, at: String, out: &mut Vec<(String, &'s Value)>) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") {
                out.push((at.clone(), schema));
            }
            for (key, value) in map {
                objects_with_properties(value, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                objects_with_properties(value, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_compiles_as_draft_2020_12_and_closes_its_objects() {
    let names = schema_names();
    assert!(names.len() >= 11, "docs/schemas holds {names:?}");
    for name in &names {
        let path = schema_dir().join(format!("{name}.schema.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        assert_eq!(schema["$schema"], DRAFT_2020_12, "{name}");
        let mut schemas = boon::Schemas::new();
        boon::Compiler::new()
            .compile(&path.display().to_string(), &mut schemas)
            .unwrap_or_else(|e| panic!("{name}.schema.json does not compile: {e:#}"));
        let mut objects = Vec::new();
        objects_with_properties(&schema, String::new(), &mut objects);
        for (at, object) in objects {
            // The `properties` of an `if`/`then`/`else` only narrow an object closed elsewhere.
            let narrowing = ["/if", "/then", "/else"].iter().any(|k| at.contains(k));
            if !narrowing && !at.ends_with("/properties") {
                assert_eq!(object["additionalProperties"], false, "{name}.schema.json#{at} lets unknown fields through");
            }
        }
    }
}

#[test]
fn docs_json_md_links_every_schema_and_its_examples_match_them() {
    let path = schema_dir().join("../json.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for name in schema_names() {
        assert!(text.contains(&format!("(schemas/{name}.schema.json)")), "docs/json.md does not link schemas/{name}.schema.json");
    }
    let mut examples = 0;
    for section in text.split("\n## ").skip(1) {
        let title = section.lines().next().unwrap_or_default();
        let schema = section.split("(schemas/").nth(1).and_then(|rest| rest.split_once(".schema.json)")).map(|(name, _)| name);
        for block in section.split("```json\n").skip(1) {
            let json = block.split_once("```").map_or(block, |(json, _)| json);
            let schema = schema.unwrap_or_else(|| panic!("docs/json.md, {title}: a JSON example without a schema link"));
            let document: Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("docs/json.md, {title}: an example is not JSON ({e}):\n{json}"));
            if let Err(e) = validate(schema, &document) {
                panic!("docs/json.md, {title}: an example does not match schemas/{schema}.schema.json:\n{e}");
            }
            examples += 1;
        }
    }
    assert!(examples >= 11, "only {examples} JSON examples found in docs/json.md");
}

#[test]
fn the_schemas_refuse_a_field_too_many_or_too_few() {
    let usage = json!({"error": {"kind": "usage", "message": "m", "hint": null, "exit_code": 2, "problems": []}});
    assert_eq!(validate("error", &usage), Ok(()));
    let mut extra = usage.clone();
    extra["error"]["detail"] = json!("x");
    assert!(validate("error", &extra).is_err(), "an unknown field passes");
    let mut missing = usage.clone();
    missing["error"].as_object_mut().expect("an object").remove("hint");
    assert!(validate("error", &missing).is_err(), "a missing field passes");
    let mut wrong = usage;
    wrong["error"]["kind"] = json!("oops");
    assert!(validate("error", &wrong).is_err(), "an unknown kind passes");
}

#[test]
fn every_json_document_matches_its_schema_and_every_schema_is_met() {
    let contract = Contract::default();
    std::thread::scope(|s| {
        s.spawn(|| a_fleet_through_its_life(&contract));
        s.spawn(|| a_fleet_with_an_unreachable_host(&contract));
        s.spawn(|| mistakes_and_a_broken_configuration(&contract));
        s.spawn(|| a_local_build(&contract));
        s.spawn(|| two_environments(&contract));
        s.spawn(|| a_judged_canary(&contract));
    });
    let met: Vec<String> = contract.met.into_inner().expect("the set of schemas met").into_iter().collect();
    assert_eq!(met, schema_names(), "every schema in docs/schemas is met by a run, and every run's schema is there");
}

/// Deploys, plans, locks, rollbacks and failures of one world, and what each command
/// shows of them.
fn a_fleet_through_its_life(contract: &Contract) {
    let mut world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");

    let plan = contract.check(&world.kai(["--json", "plan", ENV, "hello-1.1.0"]), 0, "plan");
    let phases: Vec<&str> = plan["apps"][0]["phases"].as_array().expect("phases").iter().filter_map(|p| p["phase"].as_str()).collect();
    assert!(phases.contains(&"roll") && phases.contains(&"stage"), "{plan}");
    contract.check(&world.kai(["deploy", ENV, "--dry-run", "--json", "hello-1.1.0"]), 0, "plan");
    let noop = contract.check(&world.kai(["plan", ENV, "hello-1.0.0", "--json"]), 0, "plan");
    assert_eq!(noop["apps"][0]["noop"], true, "{noop}");

    contract.check(&world.kai(["versions", "hello", "--json"]), 0, "versions");
    let check = contract.check(&world.kai(["--json", "check"]), 0, "check");
    assert_eq!((&check["host_checks"], &check["repository"]), (&Value::Null, &Value::Null));
    let check = contract.check(&world.kai(["check", "--json", "--hosts", "--repository"]), 0, "check");
    assert!(check["host_checks"].as_array().is_some_and(|c| !c.is_empty()) && check["repository"].is_array(), "{check}");

    contract.check(&world.kai(["--json", "exec", ENV, "--", "true"]), 0, "exec");
    let exec = contract.check(&world.kai(["exec", "--json", ENV, "hello", "--", "echo out; echo err >&2; exit 3"]), 1, "exec");
    assert_eq!((&exec[0]["exit_code"], &exec[0]["stdout"], &exec[0]["stderr"]), (&json!(3), &json!("out\n"), &json!("err\n")));

    contract.check(&world.kai(["--json", "status"]), 0, "status");
    contract.check(&world.kai(["status", ENV, "--json"]), 0, "status");
    contract.check(&world.kai(["status", ENV, "hello", "--json"]), 0, "status");
    contract.check(&world.kai(["--json", "history", ENV]), 0, "history");
    let ps = contract.check(&world.kai(["ps", ENV, "--json"]), 0, "ps");
    assert!(ps["processes"].as_array().is_some_and(|p| !p.is_empty()), "{ps}");
    contract.check(&world.kai(["ps", ENV, "hello", "--sort", "rss", "--top", "1", "--json"]), 0, "ps");
    let nobody = contract.check(&world.kai(["--json", "lock", ENV, "hello"]), 0, "lock");
    assert!(nobody.as_array().expect("hosts").iter().all(|h| h["lock"].is_null()), "{nobody}");
    let none = contract.check(&world.kai(["unlock", ENV, "hello", "--yes", "--json"]), 0, "unlock");
    assert_eq!(none, json!([]));

    // Someone else's lock: shown by lock, status and plan; a deploy stops at it (exit 3).
    world.host("web2").hold_lock(ANN_LOCK);
    let held = contract.check(&world.kai(["lock", ENV, "hello", "--json"]), 0, "lock");
    assert_eq!(held[1]["lock"]["user"], "ann", "{held}");
    let status = contract.check(&world.kai(["status", "--json"]), 1, "status");
    assert_eq!(status["problems"][0]["problem"], "locked", "{status}");
    let plan = contract.check(&world.kai(["plan", ENV, "hello-1.1.0", "--json"]), 0, "plan");
    assert_eq!(plan["apps"][0]["locked"][0]["host"], "web2", "{plan}");
    let locked = contract.check(&world.kai(["--json", "deploy", ENV, "hello-1.1.0"]), 3, "run");
    assert_eq!((&locked["apps"][0]["result"], &locked["apps"][0]["locked_by"]["user"]), (&json!("locked"), &json!("ann")));
    let refused = contract.error(&world.kai(["unlock", ENV, "hello", "--json"]), 2, "usage");
    assert!(refused["hint"].as_str().is_some_and(|h| h.contains("--yes")), "{refused}");
    let broken = contract.check(&world.kai(["--json", "unlock", ENV, "hello", "--yes"]), 0, "unlock");
    assert_eq!((&broken[0]["host"], &broken[0]["ok"]), (&json!("web2"), &json!(true)));

    // A lock held by hand: its message in lock, status, plan, a deploy that waited for it
    // and gave up, and history; unlock releases it.
    let hold = contract.check(&world.kai(["--json", "lock", ENV, "hello", "--hold", "--message", "freeze: incident 7"]), 0, "lock");
    assert!(hold.as_array().expect("hosts").iter().all(|h| h["lock"]["hold"] == "freeze: incident 7"), "{hold}");
    contract.check(&world.kai(["--json", "lock", ENV, "hello", "--hold", "--message", "again"]), 3, "lock");
    let status = contract.check(&world.kai(["status", ENV, "hello", "--json"]), 1, "status");
    assert_eq!(status["hosts"][0]["lock"]["hold"], "freeze: incident 7", "{status}");
    contract.check(&world.kai(["plan", ENV, "hello-1.1.0", "--json"]), 0, "plan");
    let waited = contract.check(&world.kai(["--json", "deploy", ENV, "hello-1.1.0", "--lock-wait", "1s"]), 3, "run");
    assert_eq!(waited["apps"][0]["locked_by"]["hold"], "freeze: incident 7", "{waited}");
    assert!(waited["apps"][0]["message"].as_str().is_some_and(|m| m.contains("kai waited 1s for it")), "{waited}");
    let history = contract.check(&world.kai(["history", ENV, "--json"]), 0, "history");
    assert_eq!(history["events"][0]["action"], "hold", "{history}");
    let released = contract.check(&world.kai(["--json", "unlock", ENV, "hello", "--yes"]), 0, "unlock");
    assert_eq!(released[0]["lock"]["hold"], "freeze: incident 7", "{released}");

    let deployed = contract.check(&world.kai(["deploy", ENV, "hello-1.1.0", "--json"]), 0, "run");
    assert_eq!((&deployed["apps"][0]["from"], &deployed["apps"][0]["result"]), (&json!("1.0.0"), &json!("deployed")));
    let again = contract.check(&world.kai(["deploy", ENV, "hello-1.1.0", "--json"]), 0, "run");
    assert_eq!(again["apps"][0]["result"], "up-to-date");
    let dry = contract.check(&world.kai(["--json", "rollback", ENV, "hello", "--dry-run"]), 0, "plan");
    assert_eq!((&dry["apps"][0]["action"], &dry["apps"][0]["version"]), (&json!("rollback"), &json!("1.0.0")));
    let back = contract.check(&world.kai(["--json", "rollback", ENV, "hello"]), 0, "run");
    assert_eq!((&back["command"], &back["apps"][0]["result"]), (&json!("rollback"), &json!("reverted")));

    world.publish("1.2.0", Artifact::Broken);
    let failed = contract.check(&world.kai(["--json", "deploy", ENV, "hello-1.2.0"]), 1, "run");
    assert_eq!((&failed["apps"][0]["result"], &failed["apps"][0]["failure"]["step"]), (&json!("rolled-back"), &json!("health")));

    let history = contract.check(&world.kai(["history", ENV, "hello", "--json"]), 0, "history");
    let actions: Vec<(&str, &str)> =
        history["events"].as_array().expect("events").iter().filter_map(|e| Some((e["action"].as_str()?, e["result"].as_str()?))).collect();
    assert_eq!(
        actions,
        [
            ("deploy", "rolled-back"),
            ("rollback", "ok"),
            ("deploy", "ok"),
            ("unlock", "ok"),
            ("hold", "ok"),
            ("unlock", "ok"),
            ("deploy", "ok")
        ],
        "{history}"
    );

    // Drift and a failing health check, as status shows them.
    world.host("web1").switch_current_by_hand("1.1.0");
    world.host("web2").stop_service();
    let status = contract.check(&world.kai(["--json", "status", ENV, "hello"]), 1, "status");
    let problems: BTreeSet<&str> = status["problems"].as_array().expect("problems").iter().filter_map(|p| p["problem"].as_str()).collect();
    assert!(problems.contains("drift") && problems.contains("unhealthy"), "{status}");
}

/// A build pushed from this machine: plan, run, status and history carry its record.
fn a_local_build(contract: &Contract) {
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    let file = world.build_locally("1.1.0", Artifact::Good, "hello-1.1.0.tar.gz");
    let (path, sum) = (file.display().to_string(), format!("sha256:{}", support::sha256(&file)));

    let plan = contract.check(&world.kai(["--json", "plan", ENV, &path]), 0, "plan");
    assert_eq!((&plan["apps"][0]["local"]["checksum"], &plan["apps"][0]["local"]["file"]), (&json!(sum), &json!(path)), "{plan}");
    let run = contract.check(&world.kai(["--json", "deploy", ENV, &path]), 0, "run");
    assert_eq!((&run["apps"][0]["result"], &run["apps"][0]["local"]["checksum"]), (&json!("deployed"), &json!(sum)), "{run}");
    let status = contract.check(&world.kai(["--json", "status", ENV, "hello"]), 0, "status");
    assert!(status["hosts"].as_array().expect("hosts").iter().all(|h| h["local"]["checksum"] == json!(sum)), "{status}");
    let history = contract.check(&world.kai(["--json", "history", ENV]), 0, "history");
    assert_eq!(history["events"][0]["local"]["checksum"], json!(sum), "{history}");
    assert!(history["events"][1].get("local").is_none(), "the repository's release is not a local build: {history}");
}

/// `kai diff` and `kai promote` between `test` (web1, web2) and `prod` (web3, web4).
fn two_environments(contract: &Contract) {
    let world = World::builder().active(4).standby(0).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    world.move_to_env("prod", &["web3", "web4"]);
    let same = contract.check(&world.kai(["--json", "diff", "test", "prod"]), 0, "diff");
    assert_eq!((&same["same"], &same["apps"][0]["a"]["versions"]), (&json!(true), &json!(["1.0.0"])), "{same}");

    world.deploy(["hello-1.1.0"]).assert_exit(0);
    let differs = contract.check(&world.kai(["diff", "test", "prod", "--json"]), 1, "diff");
    assert_eq!((&differs["apps"][0]["a"]["versions"], &differs["apps"][0]["b"]["versions"]), (&json!(["1.1.0"]), &json!(["1.0.0"])));
    let plan = contract.check(&world.kai(["--json", "plan", "prod", "--from", "test"]), 0, "plan");
    assert_eq!(plan["apps"][0]["promoted_from"], "test", "{plan}");
    let run = contract.check(&world.kai(["--json", "promote", "test", "prod"]), 0, "run");
    assert_eq!((&run["command"], &run["apps"][0]["promoted_from"]), (&json!("promote"), &json!("test")), "{run}");
    let history = contract.check(&world.kai(["--json", "history", "prod"]), 0, "history");
    assert_eq!(history["events"][0]["promoted_from"], "test", "{history}");
    let refused = contract.error(&world.kai(["--json", "promote", "test", "test"]), 2, "usage");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("both")), "{refused}");
}

/// A canary judged by a command: the run and the history carry the verdict.
fn a_judged_canary(contract: &Contract) {
    let world = World::builder().active(3).standby(0).publish("1.0.0").publish("1.1.0").publish("1.2.0").build().deployed("hello-1.0.0");
    let env = std::fs::read_to_string(world.root().join("environments/test.toml")).expect("the environment");
    let judged = |command: &str| format!("{env}\n[canary]\nwindow = \"1s\"\njudge_command = {command:?}\n");
    world.write_file("environments/test.toml", &judged("true"));
    let plan = contract.check(&world.kai(["--json", "plan", ENV, "hello-1.1.0"]), 0, "plan");
    assert!(plan.to_string().contains(r#""step":"judge""#), "{plan}");
    let good = contract.check(&world.kai(["--json", "deploy", ENV, "hello-1.1.0"]), 0, "run");
    assert_eq!(good["apps"][0]["canary"]["verdict"], "good", "{good}");
    world.write_file("environments/test.toml", &judged("false"));
    let bad = contract.check(&world.kai(["--json", "deploy", ENV, "hello-1.2.0"]), 1, "run");
    assert_eq!((&bad["apps"][0]["canary"]["verdict"], &bad["apps"][0]["failure"]["step"]), (&json!("bad"), &json!("judge")), "{bad}");
    let history = contract.check(&world.kai(["--json", "history", ENV]), 0, "history");
    assert_eq!(history["events"][0]["canary"]["verdict"], "bad", "{history}");
}

/// A host that cannot be read: every command says so in its document.
fn a_fleet_with_an_unreachable_host(contract: &Contract) {
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.make_unreachable("web2");

    let status = contract.check(&world.kai(["--json", "status"]), 1, "status");
    assert!(status["hosts"].as_array().expect("hosts").iter().any(|h| h["error"].is_string()), "{status}");
    let history = contract.check(&world.kai(["history", ENV, "--json"]), 1, "history");
    assert_eq!(history["unread"][0]["host"], "web2", "{history}");
    let ps = contract.check(&world.kai(["ps", ENV, "--json"]), 1, "ps");
    assert_eq!(ps["unread"][0]["host"], "web2", "{ps}");
    let lock = contract.check(&world.kai(["lock", ENV, "hello", "--json"]), 1, "lock");
    assert!(lock[1]["error"].is_string(), "{lock}");
    let exec = contract.check(&world.kai(["exec", ENV, "--json", "--", "true"]), 1, "exec");
    assert!(exec.as_array().expect("hosts").iter().any(|h| h["error"].is_string() && h["exit_code"].is_null()), "{exec}");
    let check = contract.check(&world.kai(["check", "--hosts", ENV, "--json"]), 1, "check");
    assert_eq!(check["ok"], false, "{check}");
    contract.check(&world.kai(["unlock", ENV, "hello", "--yes", "--json"]), 1, "unlock");
    let failed = contract.check(&world.kai(["--json", "deploy", ENV, "hello-1.0.0", "--force"]), 1, "run");
    assert_eq!(failed["apps"][0]["result"], "failed", "{failed}");
    let error = contract.error(&world.kai(["--json", "rollback", ENV, "hello"]), 1, "failed");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("web2")), "{error}");
}

/// Wrong names, flags and values, then a configuration with a problem: the error document.
fn mistakes_and_a_broken_configuration(contract: &Contract) {
    let world = World::builder().keep_releases(5).publish("1.0.0").build();

    for args in [
        vec!["--json", "deploy", ENV, "nosuchapp"],
        vec!["--json", "deploy", ENV, "--bogus"],
        vec!["--json", "plan", ENV],
        vec!["--json", "completions", "bash"],
        vec!["versions", "nosuchapp", "--json"],
        vec!["status", ENV, "helo", "--json"],
        vec!["history", "prod", "--json"],
        vec!["history", ENV, "--since", "soon", "--json"],
        vec!["ps", ENV, "--sort", "size", "--json"],
        vec!["--json", "deploy", "--plan", "no-such-plan.json"],
        vec!["--json", "rollback", ENV, "hello", "--to", "9.9.9"],
    ] {
        let error = contract.error(&world.kai(&args), 2, "usage");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "kai {}: {error}", args.join(" "));
    }

    world.edit_file("apps/hello.toml", "artifact = \"hello\"", "artifact = \"helo\"");
    let check = contract.check(&world.kai(["--json", "check", "--repository"]), 1, "check");
    assert!(check["repository"][0]["problem"].is_string(), "{check}");
    world.edit_file("apps/hello.toml", "artifact = \"helo\"", "artifact = \"hello\"");

    world.edit_file("kai.toml", "keep_releases = 5", "keep_releases = \"5\"");
    for args in [vec!["--json", "check"], vec!["status", "--json"], vec!["--json", "deploy", ENV, "hello"]] {
        let error = contract.error(&world.kai(&args), 2, "configuration");
        assert_eq!(error["problems"][0]["key"], "defaults.keep_releases", "kai {}: {error}", args.join(" "));
    }
}
