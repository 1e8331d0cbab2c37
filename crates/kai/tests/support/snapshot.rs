//! Snapshots of the hosts: every file and link, to show that a refused run changed nothing.

use super::*;

/// Every entry below the hosts' folders: folders, link targets, and files by content and
/// modification time (so a rewrite with the same content shows). Folder times are left
/// out: taking and releasing a lock touches `.kai/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(pub(super) BTreeMap<PathBuf, Entry>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Folder,
    Link(PathBuf),
    File { len: u64, hash: u64, modified: Option<SystemTime> },
}

impl Snapshot {
    /// What differs from `earlier`, one line per path: empty when nothing changed.
    pub fn changes_since(&self, earlier: &Snapshot) -> Vec<String> {
        let paths: BTreeSet<&PathBuf> = self.0.keys().chain(earlier.0.keys()).collect();
        paths
            .into_iter()
            .filter_map(|path| match (earlier.0.get(path), self.0.get(path)) {
                (Some(a), Some(b)) if a == b => None,
                (Some(_), Some(_)) => Some(format!("changed: {}", path.display())),
                (None, _) => Some(format!("added: {}", path.display())),
                (_, None) => Some(format!("removed: {}", path.display())),
            })
            .collect()
    }

    /// The paths of everything that is not a folder.
    pub fn non_folders(&self) -> Vec<&Path> {
        self.0.iter().filter(|(_, e)| **e != Entry::Folder).map(|(p, _)| p.as_path()).collect()
    }
}

pub(super) fn walk(dir: &Path, relative: &Path, entries: &mut BTreeMap<PathBuf, Entry>) {
    let Ok(read) = fs::read_dir(dir) else { return };
    for item in read.flatten() {
        let (path, rel) = (item.path(), relative.join(item.file_name()));
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.file_type().is_symlink() {
            entries.insert(rel, Entry::Link(fs::read_link(&path).unwrap_or_default()));
        } else if meta.is_dir() {
            entries.insert(rel.clone(), Entry::Folder);
            walk(&path, &rel, entries);
        } else {
            let mut hasher = DefaultHasher::new();
            fs::read(&path).unwrap_or_default().hash(&mut hasher);
            entries.insert(rel, Entry::File { len: meta.len(), hash: hasher.finish(), modified: meta.modified().ok() });
        }
    }
}
