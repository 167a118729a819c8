//! The data directory of `sluice up`: created when missing, and held with an OS file lock so a
//! second `sluice up` on it fails clearly. The lock dies with the process, so a restart after a
//! crash (even SIGKILL) just works.
//!
//! Private by default: it holds the admin token (in the kubeconfig), the CA key and every
//! Secret (in the store and its WAL). Locking it sets the process umask to `077`, so everything
//! `sluice up` writes from then on — kubeconfig, store, WAL, logs, pid files, pod directories —
//! is created `0600`/`0700` with no window where it is readable; the directory itself is
//! `0700`. A looser directory left by an older sluice is tightened, files and all, with a log
//! line.

use std::{
    fs::{self, File},
    io::{Read, Seek, Write},
    path::{Path, PathBuf},
};

/// Why the data dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process holds it.
    #[error("data dir {path} is in use by another `sluice up`{pid}; stop it or pass another --data-dir", pid = .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The holder's pid, if it wrote one.
        pid: Option<u32>,
    },
    /// It cannot be created or locked.
    #[error("data dir {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A locked data directory; the lock is released on drop.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates `path` when missing and locks it.
    ///
    /// # Errors
    /// [`DataDirError::Locked`] when another process holds it.
    pub fn lock(path: &Path) -> Result<Self, DataDirError> {
        let io = |source| DataDirError::Io {
            path: path.to_owned(),
            source,
        };
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        fs::create_dir_all(path).map_err(io)?;
        let tightened = tighten(path).map_err(io)?;
        if tightened > 0 {
            tracing::warn!(
                "data dir {}: made {tightened} files and directories private (group and others could read them)",
                path.display()
            );
        }
        let lock_path = path.join("lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(DataDirError::Locked {
                    path: path.to_owned(),
                    pid: pid.trim().parse().ok(),
                });
            }
            Err(fs::TryLockError::Error(err)) => return Err(io(err)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self {
            path: path.to_owned(),
            _lock: file,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes group and other permissions off `path` and everything under it (symlinks are not
/// followed); how many entries changed.
fn tighten(path: &Path) -> std::io::Result<usize> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(0);
    }
    let mut changed = 0;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7700))?;
        changed += 1;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            changed += tighten(&entry?.path())?;
        }
    }
    Ok(changed)
}
