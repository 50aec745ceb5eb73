//! One owner per run directory: the process training into it holds an exclusive OS lock on
//! `<run>/.lock`, which holds its PID.
//!
//! The lock is advisory (`flock` on Unix, `LockFileEx` on Windows, through
//! [`std::fs::File::try_lock`]) and the OS releases it when its process dies, however it dies.
//! A lock file whose lock is free but which still names a PID was left by a process that did
//! not end cleanly (SIGKILL, power loss): it is taken over with a warning.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use s2s_infer::RunDir;

use crate::TrainError;

/// Holds `<run>/.lock` until dropped; the file is removed on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `run_dir` (created if missing) for this process.
    ///
    /// # Errors
    /// [`TrainError::RunLocked`] naming the PID of the process that holds it; I/O errors.
    pub fn acquire(run_dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(run_dir).map_err(|source| TrainError::Io {
            action: "create",
            path: run_dir.to_path_buf(),
            source,
        })?;
        let path = run_dir.join(RunDir::LOCK);
        let io = |action: &'static str| {
            let path = path.clone();
            move |source| TrainError::Io {
                action,
                path,
                source,
            }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open"))?;
        let mut holder = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder may still be writing its PID; what it wrote so far names it.
                let holder = read_holder(&mut file);
                return Err(TrainError::RunLocked {
                    run_dir: run_dir.to_path_buf(),
                    holder: if holder.is_empty() {
                        "that has just started".into()
                    } else {
                        holder
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock")(e)),
        }
        holder.push_str(&read_holder(&mut file));
        let holder = holder.trim();
        if !holder.is_empty() {
            tracing::warn!(
                "{} was left locked by process {holder}, which is no longer running \
                 (killed?); taking it over",
                run_dir.display()
            );
        }
        file.set_len(0).map_err(io("write"))?;
        file.seek(SeekFrom::Start(0)).map_err(io("write"))?;
        writeln!(file, "{}", std::process::id()).map_err(io("write"))?;
        file.sync_all().map_err(io("write"))?;
        Ok(Self { file, path })
    }
}

/// What a lock file says of its holder (its PID), whatever bytes it holds.
fn read_holder(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).trim().to_string()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, so that nobody sees it empty and free.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_owner_is_refused_and_a_stale_lock_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = RunLock::acquire(&run).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(
            std::fs::read_to_string(run.join(RunDir::LOCK))
                .unwrap()
                .trim(),
            pid
        );
        // A second open file description conflicts even within one process.
        let err = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(err.contains(&format!("process {pid}")), "{err}");
        // Garbage in a lock file left behind is taken over, not an error.
        drop(first);
        std::fs::write(run.join(RunDir::LOCK), [0xff, 0xfe, 0x00]).unwrap();
        let first = RunLock::acquire(&run).unwrap();
        drop(first);
        assert!(
            !run.join(RunDir::LOCK).exists(),
            "a clean exit removes the lock"
        );
        // A lock file left by a dead process (its PID written, the OS lock gone).
        std::fs::write(run.join(RunDir::LOCK), "999999\n").unwrap();
        let taken = RunLock::acquire(&run).unwrap();
        assert_eq!(
            std::fs::read_to_string(run.join(RunDir::LOCK))
                .unwrap()
                .trim(),
            pid
        );
        drop(taken);
    }
}
