//! The checkpoints of a run: which exist, which are intact, which one a resume starts from.
//!
//! Two series live in `<run>/checkpoint/`, each checkpoint three files (model, Adam state,
//! learning-rate schedule) with a `.sha256` beside each ([`crate::recorder`]):
//! - `model-E.mpk`, `optim-E.mpk`, `scheduler-E.mpk`: the end of epoch `E`, after its
//!   validation (burn-train's checkpointer: the last `training.keep_checkpoints` and the best);
//! - `step-model-S.mpk`, …: after the `S`-th training batch of the run
//!   (`training.checkpoint_every_steps`, and whenever training is stopped by Ctrl-C/SIGTERM);
//!   only the latest is kept.
//!
//! Everything else that decides the rest of a run is a function of the seed and the position:
//! the batch order of epoch `E` ([`s2s_data::EpochBatches::plan`]) and the dropout RNG of batch
//! `S` ([`step_seed`]). So a run resumed from any checkpoint trains exactly as the
//! uninterrupted run would have.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::EventStoreClient;

use s2s_infer::recorder::{checksum_path, verify_checksum};
use s2s_infer::RunDir;

/// Name prefix of the step checkpoints' files (`step-model-S.mpk`, …).
pub const STEP_PREFIX: &str = "step-";
const PARTS: [&str; 3] = ["model", "optim", "scheduler"];

/// One checkpoint of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointRef {
    /// The end of this epoch (1-based).
    Epoch(usize),
    /// After this many training batches of the run.
    Step(usize),
}

impl CheckpointRef {
    /// Training batches done at this checkpoint, with `batches_per_epoch` batches an epoch.
    pub fn global_step(self, batches_per_epoch: usize) -> usize {
        match self {
            Self::Epoch(e) => e * batches_per_epoch,
            Self::Step(s) => s,
        }
    }

    /// The epoch training continues in (1-based) and the batches of it already done.
    pub fn next_position(self, batches_per_epoch: usize) -> (usize, usize) {
        let done = self.global_step(batches_per_epoch);
        let per = batches_per_epoch.max(1);
        (done / per + 1, done % per)
    }

    /// Completed epochs at this checkpoint.
    pub fn epochs_done(self, batches_per_epoch: usize) -> usize {
        self.global_step(batches_per_epoch) / batches_per_epoch.max(1)
    }

    /// The three files of this checkpoint in `run_dir`.
    pub fn files(self, run_dir: &Path) -> Vec<PathBuf> {
        let dir = run_dir.join(RunDir::CHECKPOINTS);
        PARTS
            .iter()
            .map(|part| match self {
                Self::Epoch(e) => dir.join(format!("{part}-{e}.mpk")),
                Self::Step(s) => dir.join(format!("{STEP_PREFIX}{part}-{s}.mpk")),
            })
            .collect()
    }

    /// Checks every file of the checkpoint against its checksum.
    ///
    /// # Errors
    /// The sentence of the first file that is missing or damaged.
    pub fn verify(self, run_dir: &Path) -> Result<(), String> {
        self.files(run_dir)
            .iter()
            .try_for_each(|file| verify_checksum(file))
    }
}

impl std::fmt::Display for CheckpointRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Epoch(e) => write!(f, "the checkpoint of epoch {e}"),
            Self::Step(s) => write!(f, "the checkpoint of step {s}"),
        }
    }
}

/// Every checkpoint whose model file exists in `run_dir`, intact or not, in no order.
pub fn list_checkpoints(run_dir: &Path) -> Vec<CheckpointRef> {
    std::fs::read_dir(run_dir.join(RunDir::CHECKPOINTS))
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".mpk")?;
            if let Some(step) = stem.strip_prefix("step-model-") {
                return step.parse().ok().map(CheckpointRef::Step);
            }
            stem.strip_prefix("model-")?
                .parse()
                .ok()
                .map(CheckpointRef::Epoch)
        })
        .collect()
}

/// The newest intact checkpoint of `run_dir` (the most training batches done), with one
/// sentence for each newer one that was passed over because it is damaged: its checksums
/// ([`CheckpointRef::verify`]) or `fits` (e.g. whether its weights load into the run's model)
/// failed.
///
/// # Errors
/// When checkpoints exist but none is intact: the sentences of all of them.
pub fn newest_intact(
    run_dir: &Path,
    batches_per_epoch: usize,
    fits: impl Fn(CheckpointRef) -> Result<(), String>,
) -> Result<Option<(CheckpointRef, Vec<String>)>, Vec<String>> {
    let mut all = list_checkpoints(run_dir);
    // Newest first; at the same position an epoch checkpoint (validated) before a step one.
    all.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.global_step(batches_per_epoch)),
            matches!(c, CheckpointRef::Step(_)),
        )
    });
    let mut skipped = Vec::new();
    for checkpoint in all {
        match checkpoint.verify(run_dir).and_then(|()| fits(checkpoint)) {
            Ok(()) => return Ok(Some((checkpoint, skipped))),
            Err(why) => skipped.push(why),
        }
    }
    if skipped.is_empty() {
        Ok(None)
    } else {
        Err(skipped)
    }
}

/// Removes `.sha256` files whose checkpoint file is gone (burn-train deletes old checkpoints'
/// `.mpk` files only). Call only while no checkpoint is being written.
pub fn remove_orphan_checksums(run_dir: &Path) {
    for entry in std::fs::read_dir(run_dir.join(RunDir::CHECKPOINTS))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if let Some(file) = path.to_str().and_then(|p| p.strip_suffix(".sha256")) {
            if !Path::new(file).exists() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Removes every file of `checkpoint` (and its checksums).
pub fn remove_checkpoint(run_dir: &Path, checkpoint: CheckpointRef) {
    for file in checkpoint.files(run_dir) {
        let _ = std::fs::remove_file(checksum_path(&file));
        let _ = std::fs::remove_file(&file);
    }
}

/// The seed of the dropout RNG for the `step`-th training batch of a run (1-based): the backend
/// is reseeded before every batch, so the masks of batch `step` do not depend on how many
/// batches this process has run.
pub fn step_seed(seed: u64, step: usize) -> u64 {
    // SplitMix64's finaliser over (seed, step): neighbouring steps get unrelated seeds.
    let mut z = seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Keeps only the newest step checkpoint: save the new one, then delete the previous.
#[derive(Debug, Default)]
pub struct LatestOnly {
    last: Option<usize>,
}

impl CheckpointingStrategy for LatestOnly {
    fn checkpointing(&mut self, step: usize, _: &EventStoreClient) -> Vec<CheckpointingAction> {
        let mut actions = vec![CheckpointingAction::Save];
        if let Some(last) = self.last.replace(step) {
            if last != step {
                actions.push(CheckpointingAction::Delete(last));
            }
        }
        actions
    }
}

/// Whether every parameter of `module` is finite (no NaN, no ±inf).
pub fn all_finite<B: Backend, M: Module<B>>(module: &M) -> bool {
    struct Finite {
        ok: bool,
    }
    impl<B: Backend> ModuleVisitor<B> for Finite {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.ok {
                let x = param.val();
                let bad = x.clone().is_nan().bool_or(x.is_inf()).any();
                self.ok = !bad.into_scalar().elem::<bool>();
            }
        }
    }
    let mut visitor = Finite { ok: true };
    module.visit(&mut visitor);
    visitor.ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn positions_and_order() {
        assert_eq!(CheckpointRef::Epoch(2).next_position(10), (3, 0));
        assert_eq!(CheckpointRef::Step(25).next_position(10), (3, 5));
        assert_eq!(CheckpointRef::Step(20).next_position(10), (3, 0));
        assert_eq!(CheckpointRef::Step(25).epochs_done(10), 2);
        assert_ne!(step_seed(42, 1), step_seed(42, 2));
        assert_ne!(step_seed(42, 1), step_seed(43, 1));
    }

    #[test]
    fn the_newest_intact_checkpoint_wins_and_damaged_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        std::fs::create_dir_all(run.join(RunDir::CHECKPOINTS)).unwrap();
        let write = |c: CheckpointRef, bytes: &[u8]| {
            for file in c.files(run) {
                std::fs::write(&file, bytes).unwrap();
                let sum = s2s_data::sha256_file(&file).unwrap();
                std::fs::write(checksum_path(&file), sum).unwrap();
            }
        };
        assert_eq!(newest_intact(run, 10, |_| Ok(())).unwrap(), None);
        write(CheckpointRef::Epoch(1), b"one");
        write(CheckpointRef::Epoch(2), b"two");
        write(CheckpointRef::Step(25), b"step");
        let (newest, skipped) = newest_intact(run, 10, |_| Ok(())).unwrap().unwrap();
        assert_eq!((newest, skipped.len()), (CheckpointRef::Step(25), 0));
        // Truncate the newest: the epoch-2 checkpoint is used, the damaged one named.
        std::fs::write(&CheckpointRef::Step(25).files(run)[1], b"st").unwrap();
        let (newest, skipped) = newest_intact(run, 10, |_| Ok(())).unwrap().unwrap();
        assert_eq!(newest, CheckpointRef::Epoch(2));
        assert!(
            skipped[0].contains("step-optim-25.mpk is damaged"),
            "{skipped:?}"
        );
        for c in [CheckpointRef::Epoch(1), CheckpointRef::Epoch(2)] {
            std::fs::write(&c.files(run)[0], b"x").unwrap();
        }
        let all = newest_intact(run, 10, |_| Ok(())).unwrap_err();
        assert_eq!(all.len(), 3, "{all:?}");
        remove_checkpoint(run, CheckpointRef::Step(25));
        assert!(!CheckpointRef::Step(25).files(run)[0].exists());
    }
}
