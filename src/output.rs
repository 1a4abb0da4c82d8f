//! Writing output files so that a reader never sees half a file: each is written to a
//! temporary file in the same folder, then renamed over the old one.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Files being written; nothing is visible at the final paths until [`Staged::commit`].
#[derive(Default)]
pub struct Staged {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Staged {
    pub fn new() -> Staged {
        Staged::default()
    }

    /// Streams a file's content into a temporary file beside `path`.
    pub fn write(&mut self, path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new().prefix(".newsdesk-").suffix(".tmp").tempfile_in(dir)?;
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
}
