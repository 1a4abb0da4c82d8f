//! Writing output files so that a reader never sees half a file: each is written to a
//! temporary file in the same folder, then renamed over the old one.
//!
//! A run that is killed leaves its temporary files behind (`.newsdesk-XXXXXX.tmp`, six
//! letters or digits). The next run that writes into the same folder removes them:
//! only files named exactly so, that no running newsdesk holds (each run keeps an OS
//! lock on its temporary files until it renames or deletes them; the kernel drops the
//! lock when a process dies) and that were last written more than a minute ago (which
//! covers the instant between a concurrent run creating a file and locking it).

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of every temporary file: `.newsdesk-` + [`RANDOM_CHARS`] + `.tmp`.
const TEMP_PREFIX: &str = ".newsdesk-";
const TEMP_SUFFIX: &str = ".tmp";
const RANDOM_CHARS: usize = 6;

/// How long a temporary file must have been left alone before it counts as stale.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Files being written; nothing is visible at the final paths until [`Staged::commit`].
#[derive(Default)]
pub struct Staged {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
    /// Folders already swept of stale temporary files by this run.
    swept: HashSet<PathBuf>,
}

/// Whether `name` is one of our temporary files' names (and nothing else's).
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|random| random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Removes the temporary files that killed runs left in `dir` (see the module docs);
/// returns how many. Problems (a folder that cannot be listed, a file that cannot be
/// removed) are not errors: the file stays for the next run.
pub fn remove_stale_temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_temp_name) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let old = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age > STALE_AFTER);
        if !meta.is_file() || !old {
            continue;
        }
        // A run that is still writing holds the lock: leave its file alone.
        let Ok(file) = std::fs::File::open(&path) else { continue };
        if file.try_lock().is_ok() && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

impl Staged {
    pub fn new() -> Staged {
        Staged::default()
    }

    /// Streams a file's content into a temporary file beside `path`.
    pub fn write(&mut self, path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        if self.swept.insert(dir.to_path_buf()) {
            remove_stale_temp_files(dir);
        }
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .rand_bytes(RANDOM_CHARS)
            .tempfile_in(dir)?;
        // Held until the file is renamed or deleted, so a concurrent run never sweeps it.
        let _ = tmp.as_file().try_lock();
        // Temporary files are private (0600); outputs are served to readers, so they get
        // the old file's permissions, or world-readable for a new one.
        let permissions = match std::fs::metadata(path) {
            Ok(m) => m.permissions(),
            Err(_) => default_permissions(),
        };
        tmp.as_file().set_permissions(permissions)?;
        {
            let mut w = BufWriter::with_capacity(64 * 1024, tmp.as_file());
            fill(&mut w)?;
            w.flush()?;
        }
        tmp.as_file().sync_data()?;
        self.files.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file into place. Until this runs, dropping `self` deletes
    /// the temporary files and leaves the previous outputs untouched.
    pub fn commit(self) -> io::Result<Vec<PathBuf>> {
        let mut written = Vec::with_capacity(self.files.len());
        for (tmp, path) in self.files {
            tmp.persist(&path).map_err(|e| e.error)?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(unix)]
fn default_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}

#[cfg(not(unix))]
fn default_permissions() -> std::fs::Permissions {
    tempfile::tempfile().and_then(|f| f.metadata()).map(|m| m.permissions()).expect("temporary file metadata")
}

/// Writes one file atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut staged = Staged::new();
    staged.write(path, |w| w.write_all(bytes))?;
    staged.commit().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_before_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("rss.xml");
        std::fs::write(&target, "old").unwrap();
        let mut staged = Staged::new();
        staged.write(&target, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        drop(staged);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");

        let mut staged = Staged::new();
        staged.write(&target, |w| w.write_all(b"new")).unwrap();
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }

    #[test]
    fn only_our_temporary_names_match() {
        for ours in [".newsdesk-AbC123.tmp", ".newsdesk-000000.tmp", ".newsdesk-zzzzzz.tmp"] {
            assert!(is_temp_name(ours), "{ours}");
        }
        for other in [
            ".newsdesk-AbC12.tmp",
            ".newsdesk-AbC1234.tmp",
            ".newsdesk-AbC-12.tmp",
            ".newsdesk-AbC123.tmp.keep",
            "newsdesk-AbC123.tmp",
            ".newsdesk-AbC123.TMP",
            ".newsdesk-ÄbC12.tmp",
            ".newsdesk-.tmp",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
    }

    #[test]
    fn stale_temporary_files_go_and_live_or_foreign_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        let plant = |name: &str, age: Option<std::time::SystemTime>| {
            let p = dir.path().join(name);
            std::fs::write(&p, "x").unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            if let Some(t) = age {
                f.set_modified(t).unwrap();
            }
            f
        };
        drop(plant(".newsdesk-stale1.tmp", Some(old)));
        drop(plant(".newsdesk-young1.tmp", None));
        drop(plant(".newsdesk-stale1.tmp.keep", Some(old)));
        drop(plant("notes.tmp", Some(old)));
        // Another run still writing this one: it holds the lock.
        let busy = plant(".newsdesk-inuse1.tmp", Some(old));
        busy.lock().unwrap();
        std::fs::create_dir(dir.path().join(".newsdesk-folder.tmp")).unwrap();

        let mut staged = Staged::new();
        staged.write(&dir.path().join("rss.xml"), |w| w.write_all(b"new")).unwrap();
        staged.commit().unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".newsdesk-folder.tmp",
                ".newsdesk-inuse1.tmp",
                ".newsdesk-stale1.tmp.keep",
                ".newsdesk-young1.tmp",
                "notes.tmp",
                "rss.xml"
            ]
        );
        drop(busy);
    }
}
