//! One subscriber send at a time per database.
//!
//! The lock is an OS file lock (`flock`) on `<database>.send-lock`, held for the whole
//! send. The kernel drops it when the process ends however it ends (Ctrl-C, `kill -9`,
//! a crash), so a killed send never leaves a stale lock behind for the editor to clear.
//! The file's text (pid, start time) is only there to name the holder in the refusal.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while a send runs; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct SendLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another send is already running on `{database}` ({holder}); wait for it to finish, \
         or stop it (its progress is kept) and run `newsdesk send --subscribers` again"
    )]
    Busy { database: String, holder: String },
    #[error("cannot lock `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
}

impl SendLock {
    /// Takes the send lock for the database at `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<SendLock, LockError> {
        let path = lock_path(database);
        let io = |source| LockError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = crate::store::db::private_file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Busy {
                    database: database.display().to_string(),
                    holder: if holder.is_empty() { "process unknown".into() } else { holder.to_string() },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let text = format!("pid {}, started {}", std::process::id(), crate::store::clock::now());
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(io)?;
        Ok(SendLock { _file: file, path })
    }

    /// Who holds the send lock of `database` right now (`pid 123, started ...`), or
    /// `None` when no send is running. Takes nothing: the lock is only tested.
    pub fn holder(database: &Path) -> Option<String> {
        let path = lock_path(database);
        let mut file = std::fs::OpenOptions::new().read(true).open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let text = text.trim();
                Some(if text.is_empty() { "process unknown".into() } else { text.to_string() })
            }
            Err(TryLockError::Error(_)) => None,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<database>.send-lock`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".send-lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("n.db");
        let first = SendLock::acquire(&db).unwrap();
        let err = SendLock::acquire(&db).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("another send is already running"), "{msg}");
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        assert_eq!(SendLock::holder(&db).map(|h| h.contains(&format!("pid {}", std::process::id()))), Some(true));
        drop(first);
        assert_eq!(SendLock::holder(&db), None);
        SendLock::acquire(&db).unwrap();
    }
}
