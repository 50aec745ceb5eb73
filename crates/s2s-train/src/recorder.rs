//! A file recorder that never leaves a half-written file under its final name.

use std::path::PathBuf;

use burn::prelude::*;
use burn::record::{FileRecorder, Recorder, RecorderError};
use serde::{de::DeserializeOwned, Serialize};

/// Wraps a burn [`FileRecorder`]: writes to a hidden temporary file in the same directory,
/// syncs it, then renames it over the target. A crash or Ctrl-C mid-write keeps the previous
/// file intact (burn's own recorders delete the old file first, then write in place).
#[derive(Debug, Clone, Default)]
pub struct AtomicRecorder<R> {
    inner: R,
}

impl<R> AtomicRecorder<R> {
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
        std::fs::rename(&temp, &target).map_err(io)
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        self.inner.load_item(file)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for AtomicRecorder<R> {
    fn file_extension() -> &'static str {
        R::file_extension()
    }
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
        assert_eq!(names, vec!["model.mpk".to_string()]);
        let b: Linear<B> = LinearConfig::new(3, 2).init(&device);
        let b = b
            .load_file(dir.path().join("model"), &recorder, &device)
            .unwrap();
        b.weight.val().into_data().assert_eq(&expected, true);
    }
}
