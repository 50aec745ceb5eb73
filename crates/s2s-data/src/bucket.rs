//! Length bucketing: batches of similar-length pairs, so little of each batch is padding.
//!
//! Pool-based, as torchtext's `BucketIterator` and fairseq's size-sorted batches: the (shuffled)
//! stream of pairs is cut into pools of `pool_batches × batch_size`; each pool is sorted by
//! length, cut into batches, and the batches are emitted in a seeded random order. Every pair is
//! seen exactly once per epoch; which pairs share a pool changes with the epoch's shuffle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{BatchDataLoader, BatchStrategy, DataLoader, FixBatchStrategy};
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use s2s_model::Seq2SeqBatch;

use crate::{Seq2SeqBatcher, Seq2SeqDataset, TokenizedPair};

/// A burn [`BatchStrategy`] that groups pairs of similar length.
#[derive(Debug)]
pub struct BucketBatchStrategy {
    batch_size: usize,
    pool_size: usize,
    pool: Vec<TokenizedPair>,
    ready: VecDeque<Vec<TokenizedPair>>,
    rng: StdRng,
    seed: u64,
    /// Shared between the clones burn makes, one per epoch, so each epoch orders its batches
    /// differently yet reproducibly.
    epochs: Arc<AtomicU64>,
}

impl BucketBatchStrategy {
    /// `pool_batches` batches are sorted together; 1 only sorts within each batch.
    pub fn new(batch_size: usize, pool_batches: usize, seed: u64) -> Self {
        Self::with_epoch(batch_size, pool_batches, seed, Arc::new(AtomicU64::new(0)))
    }

    fn with_epoch(
        batch_size: usize,
        pool_batches: usize,
        seed: u64,
        epochs: Arc<AtomicU64>,
    ) -> Self {
        let batch_size = batch_size.max(1);
        let epoch = epochs.fetch_add(1, Ordering::Relaxed);
        Self {
            batch_size,
            pool_size: batch_size * pool_batches.max(1),
            pool: Vec::new(),
            ready: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            seed,
            epochs,
        }
    }

    fn cut_pool(&mut self) {
        let mut pool = std::mem::take(&mut self.pool);
        // Stable sort: ties keep the shuffled order.
        pool.sort_by_key(|p| (p.source.len().max(p.target.len()), p.source.len()));
        let mut batches: Vec<Vec<TokenizedPair>> = Vec::new();
        let mut items = pool.into_iter().peekable();
        while items.peek().is_some() {
            batches.push(items.by_ref().take(self.batch_size).collect());
        }
        batches.shuffle(&mut self.rng);
        self.ready.extend(batches);
    }
}

impl BatchStrategy<TokenizedPair> for BucketBatchStrategy {
    fn add(&mut self, item: TokenizedPair) {
        self.pool.push(item);
    }

    fn batch(&mut self, force: bool) -> Option<Vec<TokenizedPair>> {
        if self.ready.is_empty()
            && !self.pool.is_empty()
            && (self.pool.len() >= self.pool_size || force)
        {
            self.cut_pool();
        }
        self.ready.pop_front()
    }

    fn clone_dyn(&self) -> Box<dyn BatchStrategy<TokenizedPair>> {
        Box::new(Self::with_epoch(
            self.batch_size,
            self.pool_size / self.batch_size,
            self.seed,
            self.epochs.clone(),
        ))
    }

    fn batch_size(&self) -> Option<usize> {
        Some(self.batch_size)
    }
}

/// The training loader: pairs shuffled every epoch (seeded) and, when `pool_batches > 0`,
/// length-bucketed; `pool_batches = 0` gives plain random batches.
pub fn training_loader<B: Backend>(
    items: Vec<TokenizedPair>,
    batch_size: usize,
    pool_batches: usize,
    seed: u64,
    device: B::Device,
) -> Arc<dyn DataLoader<B, Seq2SeqBatch<B>>> {
    let strategy: Box<dyn BatchStrategy<TokenizedPair>> = if pool_batches == 0 {
        Box::new(FixBatchStrategy::new(batch_size.max(1)))
    } else {
        Box::new(BucketBatchStrategy::new(batch_size, pool_batches, seed))
    };
    let batcher: Arc<dyn Batcher<B, TokenizedPair, Seq2SeqBatch<B>>> = Arc::new(Seq2SeqBatcher);
    Arc::new(BatchDataLoader::new(
        strategy,
        Arc::new(Seq2SeqDataset::new(items)),
        batcher,
        device,
        Some(StdRng::seed_from_u64(seed)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(id: u32, len: usize) -> TokenizedPair {
        TokenizedPair {
            source: vec![id; len],
            target: vec![id; len],
        }
    }

    fn drain(
        strategy: &mut dyn BatchStrategy<TokenizedPair>,
        items: Vec<TokenizedPair>,
    ) -> Vec<Vec<TokenizedPair>> {
        let mut out = Vec::new();
        for item in items {
            strategy.add(item);
            if let Some(batch) = strategy.batch(false) {
                out.push(batch);
            }
        }
        while let Some(batch) = strategy.batch(true) {
            out.push(batch);
        }
        out
    }

    fn items() -> Vec<TokenizedPair> {
        // 103 pairs with lengths cycling 1..=40, ids unique.
        (0..103)
            .map(|i| pair(i, 1 + (i as usize * 7) % 40))
            .collect()
    }

    #[test]
    fn every_pair_once_and_batches_are_length_homogeneous() {
        let mut strategy = BucketBatchStrategy::new(8, 4, 1);
        let batches = drain(&mut strategy, items());
        let mut seen: Vec<u32> = batches.iter().flatten().map(|p| p.source[0]).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
        assert_eq!(
            batches.len(),
            13,
            "3 pools of 32 → 12 batches, the tail of 7 → 1 batch"
        );
        assert!(batches.iter().all(|b| b.len() <= 8));
        // Padding: bucketed batches waste far less than the same pairs in arrival order.
        let waste = |bs: &[Vec<TokenizedPair>]| -> usize {
            bs.iter()
                .map(|b| {
                    let max = b.iter().map(|p| p.source.len()).max().unwrap_or(0);
                    b.iter().map(|p| max - p.source.len()).sum::<usize>()
                })
                .sum()
        };
        let plain: Vec<Vec<TokenizedPair>> = items().chunks(8).map(<[_]>::to_vec).collect();
        assert!(
            waste(&batches) * 3 < waste(&plain),
            "{} vs {}",
            waste(&batches),
            waste(&plain)
        );
    }

    #[test]
    fn batch_order_is_seeded_and_changes_with_the_epoch() {
        let ids = |bs: Vec<Vec<TokenizedPair>>| -> Vec<u32> {
            bs.iter().map(|b| b[0].source[0]).collect()
        };
        let mut a = BucketBatchStrategy::new(8, 4, 7);
        let mut b = BucketBatchStrategy::new(8, 4, 7);
        let order_a = ids(drain(&mut a, items()));
        assert_eq!(order_a, ids(drain(&mut b, items())));
        // burn clones the strategy for each epoch: the next epoch uses another order.
        let mut next = a.clone_dyn();
        let next_batches = drain(next.as_mut(), items());
        assert_ne!(order_a, ids(next_batches));
    }

    #[test]
    fn loader_covers_the_dataset_each_epoch() {
        type B = burn::backend::NdArray<f32>;
        let loader = training_loader::<B>(items(), 8, 4, 3, Default::default());
        for _ in 0..2 {
            let rows: usize = loader.iter().map(|batch| batch.source.dims()[0]).sum();
            assert_eq!(rows, 103);
        }
    }
}
