//! A file recorder that never leaves a half-written file under its final name, and that
//! knows when a file it wrote has been damaged since.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{FileRecorder, Recorder, RecorderError};
use serde::{de::DeserializeOwned, Serialize};

/// Wraps a burn [`FileRecorder`]: writes to a hidden temporary file in the same directory,
/// syncs it, then renames it over the target. A crash or Ctrl-C mid-write keeps the previous
/// file intact (burn's own recorders delete the old file first, then write in place).
///
/// Beside each file it writes `<file>.sha256` (the SHA-256 of its bytes, written before the
/// rename), and loading a file whose checksum file disagrees fails with a sentence naming it
/// ([`verify_checksum`]); a file without one (written by an older s2s) is loaded as is.
#[derive(Debug, Clone, Default)]
pub struct AtomicRecorder<R> {
    inner: R,
}

impl<R> AtomicRecorder<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner }
    }
}

impl<B: Backend, R: FileRecorder<B>> Recorder<B> for AtomicRecorder<R> {
    type Settings = R::Settings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, file: PathBuf) -> Result<(), RecorderError> {
        let extension = <R as FileRecorder<B>>::file_extension();
        let target = file.with_extension(extension);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The inner recorder replaces the extension, so the marker goes into the stem.
        let temp = target.with_file_name(format!(".{name}.partial.{extension}"));
        self.inner.save_item(item, temp.clone())?;
        let io = |e: std::io::Error| RecorderError::Unknown(format!("{}: {e}", target.display()));
        std::fs::File::open(&temp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        let digest =
            s2s_data::sha256_file(&temp).map_err(|e| RecorderError::Unknown(e.to_string()))?;
        s2s_data::write_atomic(&checksum_path(&target), format!("{digest}\n").as_bytes())
            .map_err(|e| RecorderError::Unknown(e.to_string()))?;
        std::fs::rename(&temp, &target).map_err(io)
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        let target = file.with_extension(<R as FileRecorder<B>>::file_extension());
        if checksum_path(&target).is_file() {
            verify_checksum(&target).map_err(RecorderError::Unknown)?;
        }
        self.inner.load_item(file)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for AtomicRecorder<R> {
    fn file_extension() -> &'static str {
        R::file_extension()
    }
}

/// `<file>.sha256`: where [`AtomicRecorder`] keeps the checksum of `file`.
pub fn checksum_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Checks `file` against the checksum [`AtomicRecorder`] wrote beside it.
///
/// # Errors
/// One sentence naming `file` when it is missing, has no checksum file, or its bytes no longer
/// match (truncated, overwritten or corrupted since it was written).
pub fn verify_checksum(file: &Path) -> Result<(), String> {
    let sum = checksum_path(file);
    let expected = std::fs::read_to_string(&sum).map_err(|e| {
        format!(
            "{} has no readable checksum ({}: {e})",
            file.display(),
            sum.display()
        )
    })?;
    let actual = s2s_data::sha256_file(file).map_err(|e| e.to_string())?;
    if expected.trim() == actual {
        Ok(())
    } else {
        Err(format!(
            "{} is damaged: its SHA-256 does not match the one written with it",
            file.display()
        ))
    }
}

/// Runs `f`, turning a panic into its message, with the panic hook silenced meanwhile: burn
/// panics when a record does not fit its module (other shapes, other layer counts), and such a
/// file must be one sentence for the user, not a backtrace.
///
/// # Errors
/// The panic's message, on one line.
pub fn without_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "a panic".into())
            // One line: burn's messages span several.
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::{Linear, LinearConfig};
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};

    type B = NdArray<f32>;

    #[test]
    fn writes_under_final_name_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = AtomicRecorder::new(NamedMpkFileRecorder::<FullPrecisionSettings>::new());
        let device = Default::default();
        let a: Linear<B> = LinearConfig::new(3, 2).init(&device);
        // Read the weights first: burn initialises lazily, and a clone would draw its own.
        let expected = a.weight.val().into_data();
        a.save_file(dir.path().join("model"), &recorder).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(
            names,
            vec!["model.mpk".to_string(), "model.mpk.sha256".to_string()]
        );
        let b: Linear<B> = LinearConfig::new(3, 2).init(&device);
        let b = b
            .load_file(dir.path().join("model"), &recorder, &device)
            .unwrap();
        b.weight.val().into_data().assert_eq(&expected, true);
    }

    #[test]
    fn a_damaged_file_is_named_and_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = AtomicRecorder::new(NamedMpkFileRecorder::<FullPrecisionSettings>::new());
        let device = Default::default();
        let a: Linear<B> = LinearConfig::new(8, 8).init(&device);
        a.save_file(dir.path().join("model"), &recorder).unwrap();
        let file = dir.path().join("model.mpk");
        assert_eq!(verify_checksum(&file), Ok(()));
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = verify_checksum(&file).unwrap_err();
        assert!(err.contains("model.mpk is damaged"), "{err}");
        let b: Linear<B> = LinearConfig::new(8, 8).init(&device);
        let err = b
            .load_file(dir.path().join("model"), &recorder, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is damaged"), "{err}");
        std::fs::remove_file(checksum_path(&file)).unwrap();
        assert!(verify_checksum(&file)
            .unwrap_err()
            .contains("no readable checksum"));
    }
}
