//! The repository client against a real HTTP server on 127.0.0.1 and real folders.

use std::path::{Path, PathBuf};

use kai_core::checksum::Algorithm;
use kai_core::config::RepoLocation;
use kai_core::maven::{self, Coordinates, Packaging};
use tempfile::TempDir;

use super::digest::Hasher;
use super::test_server::TestServer;
use super::{Credentials, Limits, RepoError, Repository, METADATA_CAP};

const USER: &str = "deployer";
const PASSWORD: &str = "s3cret-Pa55w0rd";
const BODY: &[u8] = b"PK\x03\x04 pretend this is a zip";

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { dir: tempfile::tempdir().expect("temporary folder") }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn serve(&self) -> TestServer {
        TestServer::start(&self.root(), Some((USER, PASSWORD)))
    }

    fn http(&self, server: &TestServer, password: &str) -> Repository {
        let credentials = Credentials { username: USER.to_string(), password: password.to_string() };
        let location = RepoLocation::Http(format!("{}/", server.base));
        Repository::new(location, Some(credentials), self.cache(), Limits::default()).expect("http repository")
    }

    fn folder(&self) -> Repository {
        Repository::new(RepoLocation::Folder(self.root()), None, self.cache(), Limits::default()).expect("folder repository")
    }

    /// Puts the artifact and one checksum file per algorithm into the repository.
    fn publish(&self, coords: &Coordinates, body: &[u8], algorithms: &[Algorithm]) {
        let path = self.root().join(coords.artifact_path());
        write(&path, body);
        for &algorithm in algorithms {
            let text = format!("{}  {}\n", digest(body, algorithm), coords.file_name());
            write(&sidecar(&path, algorithm), text.as_bytes());
        }
    }

    fn write_metadata(&self, versions: &[&str]) {
        let list: String = versions.iter().map(|version| format!("      <version>{version}</version>\n")).collect();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>org.example</groupId>\n  \
             <artifactId>app</artifactId>\n  <versioning>\n    <versions>\n{list}    </versions>\n  \
             </versioning>\n</metadata>\n"
        );
        write(&self.root().join(maven::metadata_path("org.example", "app")), xml.as_bytes());
    }

    /// The files in the cache folder, hidden ones included.
    /// The files in the cache, as `<checksum folder>/<name>`.
    fn cached_files(&self) -> Vec<String> {
        let mut names = Vec::new();
        for folder in std::fs::read_dir(self.cache()).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                names.push(format!("{}/{}", folder.file_name().to_string_lossy(), file.file_name().to_string_lossy()));
            }
        }
        names.sort();
        names
    }

    /// Where the cache keeps `coords` with the sha256 of `body`.
    fn cached(&self, coords: &Coordinates, body: &[u8]) -> std::path::PathBuf {
        self.cache().join(format!("sha256-{}", digest(body, Algorithm::Sha256))).join(coords.file_name())
    }
}

fn coords(version: &str) -> Coordinates {
    Coordinates {
        group: "org.example".to_string(),
        artifact: "app".to_string(),
        version: version.to_string(),
        classifier: Some("standalone".to_string()),
        packaging: Packaging::Zip,
    }
}

fn digest(body: &[u8], algorithm: Algorithm) -> String {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(body);
    hasher.finish_hex()
}

fn sidecar(artifact: &Path, algorithm: Algorithm) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(format!(".{}", algorithm.extension()));
    PathBuf::from(name)
}

fn write(path: &Path, bytes: &[u8]) {
    let parent = path.parent().expect("a parent folder");
    std::fs::create_dir_all(parent).expect("create folders");
    std::fs::write(path, bytes).expect("write file");
}

fn assert_no_password(error: &RepoError) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    assert!(!display.contains(PASSWORD), "password in Display: {display}");
    assert!(!debug.contains(PASSWORD), "password in Debug: {debug}");
}

// ---- HTTP ----

#[tokio::test]
async fn http_versions_come_from_metadata_in_its_order() {
    let fixture = Fixture::new();
    fixture.write_metadata(&["1.9.0", "1.10.0", "1.2.0-hotfix"]);
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let versions = repo.versions("org.example", "app").await.expect("versions");

    assert_eq!(versions, ["1.9.0", "1.10.0", "1.2.0-hotfix"]);
}

#[tokio::test]
async fn http_versions_of_an_unknown_artifact_are_not_found() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let error = repo.versions("org.example", "nope").await.expect_err("no metadata");

    assert!(matches!(error, RepoError::NotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("org.example:nope not found: http://127.0.0.1:"), "{message}");
    assert!(message.ends_with("/repo/org/example/nope/maven-metadata.xml"), "{message}");
}

#[tokio::test]
async fn http_invalid_metadata_names_its_url() {
    let fixture = Fixture::new();
    write(&fixture.root().join(maven::metadata_path("org.example", "app")), b"<metadata><versioning><versions><version>1.0</vers");
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let error = repo.versions("org.example", "app").await.expect_err("broken xml");

    assert!(matches!(error, RepoError::Metadata { .. }), "{error:?}");
    assert!(error.to_string().contains("maven-metadata.xml"), "{error}");
}

#[tokio::test]
async fn http_fetch_downloads_and_verifies_with_the_strongest_checksum() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[Algorithm::Sha256, Algorithm::Sha1]);
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let fetched = repo.fetch(&coords).await.expect("fetch");

    assert_eq!(fetched.path, fixture.cached(&coords, BODY));
    assert_eq!(std::fs::read(&fetched.path).expect("cached file"), BODY);
    assert_eq!(fetched.size, BODY.len() as u64);
    assert_eq!(fetched.checksum.algorithm, Algorithm::Sha256);
    assert_eq!(fetched.checksum.hex, digest(BODY, Algorithm::Sha256));
    assert_eq!(fixture.cached_files(), [format!("sha256-{}/{}", digest(BODY, Algorithm::Sha256), coords.file_name())]);
}

#[tokio::test]
async fn http_checksum_falls_back_to_md5() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[Algorithm::Md5]);
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let checksum = repo.checksum(&coords).await.expect("checksum");

    assert_eq!(checksum.algorithm, Algorithm::Md5);
    assert_eq!(checksum.hex, digest(BODY, Algorithm::Md5));
    let artifact = format!("/repo/{}", coords.artifact_path());
    let tried: Vec<String> = server.requests().into_iter().map(|r| r.replace(&artifact, "A")).collect();
    assert_eq!(tried, ["GET A.sha256", "GET A.sha1", "GET A.md5"]);
}

#[tokio::test]
async fn http_fetch_reuses_a_verified_cached_file() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[Algorithm::Sha1]);
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let first = repo.fetch(&coords).await.expect("first fetch");
    let second = repo.fetch(&coords).await.expect("second fetch");

    assert_eq!(first, second);
    let artifact_gets = server.requests().iter().filter(|request| request.ends_with(".zip")).count();
    assert_eq!(artifact_gets, 1);
}

#[tokio::test]
async fn http_fetch_replaces_a_corrupt_cached_file() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[Algorithm::Sha256]);
    let cached = fixture.cached(&coords, BODY);
    std::fs::create_dir_all(cached.parent().expect("a folder")).expect("the cache folder");
    write(&cached, b"truncated");
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let fetched = repo.fetch(&coords).await.expect("fetch");

    assert_eq!(std::fs::read(&fetched.path).expect("cached file"), BODY);
}

#[tokio::test]
async fn http_checksum_mismatch_is_an_error_and_leaves_nothing_cached() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[Algorithm::Sha1]);
    write(&fixture.root().join(coords.artifact_path()), b"tampered");
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let error = repo.fetch(&coords).await.expect_err("mismatch");

    let RepoError::ChecksumMismatch { url, expected, actual, algorithm } = &error else {
        panic!("expected a checksum mismatch, got {error:?}");
    };
    assert_eq!(url, &repo.artifact_url(&coords));
    assert_eq!(expected, &digest(BODY, Algorithm::Sha1));
    assert_eq!(actual, &digest(b"tampered", Algorithm::Sha1));
    assert_eq!(*algorithm, Algorithm::Sha1);
    assert!(fixture.cached_files().is_empty(), "{:?}", fixture.cached_files());
}

/// Issue 22: two repositories holding the same coordinates with other contents (two
/// kai runs on one machine) never replace each other's verified file.
#[tokio::test]
async fn the_cache_is_keyed_by_checksum_so_a_verified_file_never_changes_under_a_run() {
    let (one, two) = (Fixture::new(), Fixture::new());
    let coords = coords("1.0.0");
    one.publish(&coords, BODY, &[Algorithm::Sha256]);
    two.publish(&coords, b"another build of 1.0.0", &[Algorithm::Sha256]);
    let (server_one, server_two) = (one.serve(), two.serve());
    let credentials = || Some(Credentials { username: USER.to_string(), password: PASSWORD.to_string() });
    let repo = |server: &TestServer| {
        let location = RepoLocation::Http(format!("{}/", server.base));
        Repository::new(location, credentials(), one.cache(), Limits::default()).expect("http repository")
    };
    let (repo_one, repo_two) = (repo(&server_one), repo(&server_two));

    let first = repo_one.fetch(&coords).await.expect("fetch");
    let second = repo_two.fetch(&coords).await.expect("fetch");

    assert_ne!(first.path, second.path);
    assert_eq!(std::fs::read(&first.path).expect("cached file"), BODY, "the first run's file is as it verified it");
    assert_eq!(std::fs::read(&second.path).expect("cached file"), b"another build of 1.0.0");
}

#[tokio::test]
async fn http_missing_artifact_is_not_found() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);
    let coords = coords("9.9.9");

    let error = repo.fetch(&coords).await.expect_err("missing");

    assert!(matches!(error, RepoError::NotFound { .. }), "{error:?}");
    assert_eq!(error.to_string(), format!("artifact not found: {}", repo.artifact_url(&coords)));
}

#[tokio::test]
async fn http_artifact_without_checksum_is_refused() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[]);
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let error = repo.fetch(&coords).await.expect_err("no checksum");

    assert!(matches!(error, RepoError::NoChecksum { .. }), "{error:?}");
    assert!(error.to_string().contains(&repo.artifact_url(&coords)), "{error}");
    assert!(fixture.cached_files().is_empty());
}

#[tokio::test]
async fn http_garbage_checksum_file_is_an_error() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[]);
    let artifact = fixture.root().join(coords.artifact_path());
    write(&sidecar(&artifact, Algorithm::Sha1), b"<html>login</html>");
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);

    let error = repo.checksum(&coords).await.expect_err("garbage");

    assert!(matches!(error, RepoError::BadChecksum { .. }), "{error:?}");
    assert!(error.to_string().contains(".zip.sha1"), "{error}");
}

#[tokio::test]
async fn http_wrong_password_is_unauthorized_and_never_shown() {
    let fixture = Fixture::new();
    fixture.write_metadata(&["1.0.0"]);
    let server = fixture.serve();
    let wrong = format!("{PASSWORD}-wrong");
    let repo = fixture.http(&server, &wrong);

    let error = repo.versions("org.example", "app").await.expect_err("401");

    let RepoError::Unauthorized { status, .. } = &error else {
        panic!("expected unauthorized, got {error:?}");
    };
    assert_eq!(status.as_u16(), 401);
    assert!(error.to_string().contains("check the credentials"), "{error}");
    assert_no_password(&error);
    assert!(!format!("{error:?}").contains(&wrong));
    assert!(!format!("{repo:?}").contains(&wrong), "{repo:?}");
}

#[tokio::test]
async fn http_without_credentials_is_unauthorized() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let location = RepoLocation::Http(server.base.clone());
    let repo = Repository::new(location, None, fixture.cache(), Limits::default()).expect("repository");

    let error = repo.fetch(&coords("1.0.0")).await.expect_err("401");

    assert!(matches!(error, RepoError::Unauthorized { .. }), "{error:?}");
}

#[tokio::test]
async fn the_password_appears_in_no_error() {
    let fixture = Fixture::new();
    let good = coords("1.0.0");
    fixture.publish(&good, BODY, &[Algorithm::Sha256]);
    write(&fixture.root().join(good.artifact_path()), b"tampered");
    let server = fixture.serve();
    let repo = fixture.http(&server, PASSWORD);
    let unreachable = unreachable_repo(&fixture);

    let errors = [
        repo.fetch(&good).await.expect_err("mismatch"),
        repo.fetch(&coords("2.0.0")).await.expect_err("missing"),
        repo.versions("org.example", "none").await.expect_err("no metadata"),
        unreachable.fetch(&good).await.expect_err("unreachable"),
    ];

    for error in &errors {
        assert_no_password(error);
    }
    assert!(!format!("{repo:?}").contains(PASSWORD), "{repo:?}");
    assert!(!repo.describe().contains(PASSWORD));
    assert!(!repo.describe().contains(USER));
}

fn unreachable_repo(fixture: &Fixture) -> Repository {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let credentials = Credentials { username: USER.to_string(), password: PASSWORD.to_string() };
    let location = RepoLocation::Http(format!("http://127.0.0.1:{port}/repo"));
    Repository::new(location, Some(credentials), fixture.cache(), Limits::default()).expect("repository")
}

#[tokio::test]
async fn http_unreachable_server_is_a_network_error_naming_the_url() {
    let fixture = Fixture::new();
    let repo = unreachable_repo(&fixture);

    let error = repo.versions("org.example", "app").await.expect_err("refused");

    assert!(matches!(error, RepoError::Network { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("cannot reach http://127.0.0.1:"), "{message}");
    assert!(message.contains("maven-metadata.xml: "), "{message}");
}

#[test]
fn credentials_in_the_url_are_refused_without_showing_them() {
    let location = RepoLocation::Http(format!("https://{USER}:{PASSWORD}@repo.example.org/maven"));

    let error = Repository::new(location, None, PathBuf::from("/tmp/unused"), Limits::default()).expect_err("userinfo");

    assert!(matches!(error, RepoError::InvalidLocation { .. }), "{error:?}");
    assert!(error.to_string().contains("https://***@repo.example.org/maven"), "{error}");
    assert_no_password(&error);
}

#[test]
fn other_schemes_are_refused() {
    let location = RepoLocation::Http("ftp://repo.example.org/maven".to_string());

    let error = Repository::new(location, None, PathBuf::from("/tmp/unused"), Limits::default()).expect_err("ftp");

    assert!(matches!(error, RepoError::InvalidLocation { .. }), "{error:?}");
}

#[test]
fn http_describe_and_artifact_url() {
    let location = RepoLocation::Http("https://repo.example.org/maven/".to_string());
    let credentials = Credentials { username: USER.to_string(), password: PASSWORD.to_string() };
    let repo = Repository::new(location, Some(credentials), PathBuf::from("/tmp/unused"), Limits::default()).expect("repository");
    let coords = coords("1.0.0");

    assert_eq!(repo.describe(), "https://repo.example.org/maven");
    assert_eq!(repo.artifact_url(&coords), format!("https://repo.example.org/maven/{}", coords.artifact_path()));
}

#[test]
fn credentials_debug_hides_the_password() {
    let credentials = Credentials { username: USER.to_string(), password: PASSWORD.to_string() };

    let debug = format!("{credentials:?}");

    assert!(debug.contains(USER), "{debug}");
    assert!(!debug.contains(PASSWORD), "{debug}");
}

// ---- Folder ----

#[tokio::test]
async fn folder_versions_come_from_metadata() {
    let fixture = Fixture::new();
    fixture.write_metadata(&["2.0.0", "1.0.0"]);

    let versions = fixture.folder().versions("org.example", "app").await.expect("versions");

    assert_eq!(versions, ["2.0.0", "1.0.0"]);
}

#[tokio::test]
async fn folder_without_metadata_lists_version_folders() {
    let fixture = Fixture::new();
    fixture.publish(&coords("1.0.0"), BODY, &[Algorithm::Sha1]);
    fixture.publish(&coords("2.0.0"), BODY, &[Algorithm::Sha1]);
    let artifact_dir = fixture.root().join("org/example/app");
    write(&artifact_dir.join("stray-file.txt"), b"not a version");
    std::fs::create_dir_all(artifact_dir.join(".hidden")).expect("hidden folder");

    let versions = fixture.folder().versions("org.example", "app").await.expect("versions");

    assert_eq!(versions, ["1.0.0", "2.0.0"]);
}

#[tokio::test]
async fn folder_versions_of_an_unknown_artifact_are_not_found() {
    let fixture = Fixture::new();

    let error = fixture.folder().versions("org.example", "nope").await.expect_err("unknown");

    assert!(matches!(error, RepoError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().starts_with("org.example:nope not found: /"), "{error}");
}

#[tokio::test]
async fn folder_fetch_copies_and_verifies() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[Algorithm::Sha1, Algorithm::Md5]);
    let repo = fixture.folder();

    let fetched = repo.fetch(&coords).await.expect("fetch");

    assert_eq!(std::fs::read(&fetched.path).expect("cached file"), BODY);
    assert_eq!(fetched.checksum.algorithm, Algorithm::Sha1);
    assert_eq!(fetched.size, BODY.len() as u64);
    assert_eq!(fixture.cached_files(), [format!("sha1-{}/{}", digest(BODY, Algorithm::Sha1), coords.file_name())]);
}

#[tokio::test]
async fn folder_checksum_mismatch_is_an_error() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");
    fixture.publish(&coords, BODY, &[Algorithm::Sha256]);
    write(&fixture.root().join(coords.artifact_path()), b"tampered");

    let error = fixture.folder().fetch(&coords).await.expect_err("mismatch");

    assert!(matches!(error, RepoError::ChecksumMismatch { .. }), "{error:?}");
    assert!(fixture.cached_files().is_empty());
}

#[tokio::test]
async fn folder_missing_artifact_is_not_found() {
    let fixture = Fixture::new();
    let repo = fixture.folder();
    let coords = coords("1.0.0");

    let error = repo.fetch(&coords).await.expect_err("missing");

    assert_eq!(error.to_string(), format!("artifact not found: {}", repo.artifact_url(&coords)));
}

#[test]
fn folder_artifact_url_is_a_path() {
    let fixture = Fixture::new();
    let coords = coords("1.0.0");

    let url = fixture.folder().artifact_url(&coords);

    assert_eq!(PathBuf::from(url), fixture.root().join(coords.artifact_path()));
    assert_eq!(fixture.folder().describe(), fixture.root().display().to_string());
}

#[test]
fn relative_folder_is_refused() {
    let location = RepoLocation::Folder(PathBuf::from("relative/repo"));

    let error = Repository::new(location, None, PathBuf::from("/tmp/unused"), Limits::default()).expect_err("relative");

    assert!(matches!(error, RepoError::InvalidLocation { .. }), "{error:?}");
}

/// A server that answers every request with `head`, then sends `body` forever, one
/// chunk every `pause` (an endless or a trickling answer).
fn hostile_server(head: &'static str, body: &'static [u8], pause: std::time::Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                while stream.write_all(body).is_ok() {
                    std::thread::sleep(pause);
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}/repo")
}

#[tokio::test]
async fn an_endless_metadata_body_is_refused_at_its_cap() {
    let base = hostile_server("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n", &[b'x'; 65536], std::time::Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::new(RepoLocation::Http(base), None, dir.path().to_owned(), Limits::default()).unwrap();
    let started = std::time::Instant::now();
    let error = repo.versions("org.example", "hello").await.unwrap_err();
    assert!(matches!(error, RepoError::TooLarge { limit: METADATA_CAP, .. }), "{error}");
    assert!(error.to_string().contains("maven-metadata.xml is larger than"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn a_server_sending_a_byte_at_a_time_is_given_up_at_the_deadline() {
    let base = hostile_server("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<", b" ", std::time::Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { document: std::time::Duration::from_secs(2), ..Limits::default() };
    let repo = Repository::new(RepoLocation::Http(base), None, dir.path().to_owned(), limits).unwrap();
    let started = std::time::Instant::now();
    let error = repo.versions("org.example", "hello").await.unwrap_err();
    assert!(matches!(error, RepoError::TooSlow { .. }), "{error}");
    assert!(error.to_string().contains("within 2s"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}
