//! Finding the configuration repository on disk and reading its files, for
//! `kai_core::config::load` to validate.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kai_core::config::{ConfigSources, SourceFile};

const KAI_TOML: &str = "kai.toml";

/// Why no configuration repository was found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// `--config DIR` or `KAI_CONFIG` names a folder without `kai.toml`.
    #[error("no kai.toml in {} (from {from})", dir.display())]
    NotARepository { dir: PathBuf, from: &'static str },
    /// Walking up from the working directory found no `kai.toml`.
    #[error("no kai.toml in {} or any folder above it", cwd.display())]
    NotFound { cwd: PathBuf },
}

impl FindError {
    pub fn hint(&self) -> String {
        match self {
            FindError::NotARepository { dir, .. } => {
                format!("run `kai init {}` to create one, or point --config at the folder holding kai.toml", dir.display())
            }
            FindError::NotFound { .. } => "run `kai init` to create one, or pass --config DIR (or set KAI_CONFIG)".to_owned(),
        }
    }
}

/// A file or folder of the configuration repository that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// `--config DIR`, else `KAI_CONFIG` (passed in, never read here), else walk up from
/// `cwd` to a folder holding `kai.toml`. Relative paths are taken from `cwd`; the root
/// returned is absolute when `cwd` is.
pub fn find_root(explicit: Option<&Path>, kai_config_env: Option<&Path>, cwd: &Path) -> Result<PathBuf, FindError> {
    let named = explicit
        .map(|dir| (dir, "--config"))
        .or_else(|| kai_config_env.filter(|dir| !dir.as_os_str().is_empty()).map(|dir| (dir, "KAI_CONFIG")));
    if let Some((dir, from)) = named {
        let dir: PathBuf = cwd.join(dir).components().collect();
        return if dir.join(KAI_TOML).is_file() { Ok(dir) } else { Err(FindError::NotARepository { dir, from }) };
    }
    cwd.ancestors()
        .find(|dir| dir.join(KAI_TOML).is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| FindError::NotFound { cwd: cwd.to_path_buf() })
}

/// Reads `kai.toml`, `environments/*.toml` and `apps/*.toml` (each folder sorted by
/// file name; a missing folder is an empty one).
pub fn read_sources(root: &Path) -> Result<ConfigSources, ReadError> {
    Ok(ConfigSources {
        root: root.to_path_buf(),
        kai_toml: read_file(root, Path::new(KAI_TOML))?,
        environments: read_folder(root, "environments")?,
        apps: read_folder(root, "apps")?,
    })
}

fn read_file(root: &Path, relative: &Path) -> Result<SourceFile, ReadError> {
    let path = root.join(relative);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(SourceFile { path: relative.to_path_buf(), text }),
        Err(source) => Err(ReadError { path, source }),
    }
}

/// The `*.toml` files of one folder, by name; hidden files (editor leftovers) are skipped.
fn read_folder(root: &Path, folder: &str) -> Result<Vec<SourceFile>, ReadError> {
    let dir = root.join(folder);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ReadError { path: dir, source }),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ReadError { path: dir.clone(), source })?;
        let name = entry.file_name();
        let is_toml = Path::new(&name).extension().is_some_and(|ext| ext == "toml");
        let hidden = name.to_string_lossy().starts_with('.');
        if is_toml && !hidden && dir.join(&name).is_file() {
            names.push(name);
        }
    }
    names.sort();
    names.iter().map(|name| read_file(root, &Path::new(folder).join(name))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temporary folder")
    }

    fn write(path: &Path, text: &str) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create folder");
        }
        fs::write(path, text).expect("write file");
    }

    fn repository() -> tempfile::TempDir {
        let dir = temp();
        write(&dir.path().join(KAI_TOML), "[repository]\nurl = \"repo\"\n");
        dir
    }

    #[test]
    fn walks_up_from_a_subfolder() {
        let repo = repository();
        let nested = repo.path().join("apps/deep/er");
        fs::create_dir_all(&nested).expect("create folder");
        assert_eq!(find_root(None, None, &nested).expect("found"), repo.path());
        assert_eq!(find_root(None, None, repo.path()).expect("found"), repo.path());
    }

    #[test]
    fn explicit_folder_wins_over_kai_config() {
        let (explicit, env) = (repository(), repository());
        let found = find_root(Some(explicit.path()), Some(env.path()), Path::new("/"));
        assert_eq!(found.expect("found"), explicit.path());
    }

    #[test]
    fn kai_config_wins_over_walking_up() {
        let (env, cwd) = (repository(), repository());
        assert_eq!(find_root(None, Some(env.path()), cwd.path()).expect("found"), env.path());
        let empty = find_root(None, Some(Path::new("")), cwd.path());
        assert_eq!(empty.expect("found"), cwd.path());
    }

    #[test]
    fn relative_folder_is_taken_from_cwd() {
        let outer = temp();
        write(&outer.path().join("config/kai.toml"), "");
        let found = find_root(Some(Path::new("./config")), None, outer.path());
        assert_eq!(found.expect("found"), outer.path().join("config"));
    }

    #[test]
    fn named_folder_without_kai_toml_is_an_error_with_a_hint() {
        let empty = temp();
        let error = find_root(None, Some(empty.path()), Path::new("/")).expect_err("no kai.toml");
        assert!(matches!(error, FindError::NotARepository { from: "KAI_CONFIG", .. }), "{error}");
        assert!(error.to_string().contains("(from KAI_CONFIG)"), "{error}");
        assert!(error.hint().contains("kai init"));
    }

    #[test]
    fn nothing_found_says_how_to_start() {
        let empty = temp();
        let error = find_root(None, None, empty.path()).expect_err("no kai.toml");
        assert!(matches!(error, FindError::NotFound { .. }), "{error}");
        assert_eq!(error.hint(), "run `kai init` to create one, or pass --config DIR (or set KAI_CONFIG)");
    }

    #[test]
    fn reads_toml_files_sorted_and_skips_the_rest() {
        let repo = repository();
        let root = repo.path();
        write(&root.join("environments/test.toml"), "t");
        write(&root.join("environments/prod.toml"), "p");
        write(&root.join("environments/.#prod.toml"), "editor");
        write(&root.join("environments/README.md"), "docs");
        fs::create_dir_all(root.join("environments/old.toml")).expect("create folder");
        let sources = read_sources(root).expect("read");
        assert_eq!(sources.root, root);
        assert_eq!(sources.kai_toml.path, PathBuf::from("kai.toml"));
        let envs: Vec<_> = sources.environments.iter().map(|f| (f.path.clone(), f.text.as_str())).collect();
        assert_eq!(envs, [(PathBuf::from("environments/prod.toml"), "p"), (PathBuf::from("environments/test.toml"), "t")]);
        assert!(sources.apps.is_empty());
    }

    #[test]
    fn read_errors_name_the_path() {
        let empty = temp();
        let error = read_sources(empty.path()).expect_err("no kai.toml");
        assert_eq!(error.path, empty.path().join(KAI_TOML));
        assert!(error.to_string().contains("kai.toml"), "{error}");
    }
}
