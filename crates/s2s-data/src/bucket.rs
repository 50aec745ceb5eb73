//! Length bucketing: batches of similar-length pairs, so little of each batch is padding.
//!
//! Pool-based, as torchtext's `BucketIterator` and fairseq's size-sorted batches: the shuffled
//! pairs are cut into pools of `pool_batches × batch_size`; each pool is sorted by length, cut
//! into batches, and the pool's batches are put in a random order. Every pair is seen exactly
//! once per epoch; which pairs share a pool changes with the epoch's shuffle.
//!
//! The order of epoch `e` is a pure function of `(seed, e)` ([`EpochBatches::plan`]), as
//! fairseq's `epoch_iterator(epoch)` seeds each epoch with `seed + epoch`: a run resumed at
//! epoch `e` (in another process) sees the batches the uninterrupted run would have seen.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use s2s_model::Seq2SeqBatch;

use crate::{Seq2SeqBatcher, TokenizedPair};

/// The training pairs and how they are cut into batches, epoch by epoch.
#[derive(Clone, Debug)]
pub struct EpochBatches {
    items: Arc<Vec<TokenizedPair>>,
    batch_size: usize,
    /// 0: plain random batches; otherwise this many batches are length-sorted together.
    pool_batches: usize,
    seed: u64,
}

impl EpochBatches {
    /// `pool_batches` batches are sorted by length together; 1 only sorts within each batch, 0
    /// gives plain random batches. A `batch_size` of 0 is taken as 1.
    pub fn new(
        items: Vec<TokenizedPair>,
        batch_size: usize,
        pool_batches: usize,
        seed: u64,
    ) -> Self {
        Self {
            items: Arc::new(items),
            batch_size: batch_size.max(1),
            pool_batches,
            seed,
        }
    }

    /// Number of training pairs (every epoch sees each once).
    pub fn num_items(&self) -> usize {
        self.items.len()
    }

    /// Batches per epoch; the same for every epoch (pools sit at fixed offsets of the shuffle).
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.items.len();
        if self.pool_batches == 0 {
            return n.div_ceil(self.batch_size);
        }
        let pool = self.batch_size * self.pool_batches;
        (n / pool) * self.pool_batches + (n % pool).div_ceil(self.batch_size)
    }

    /// The batches of epoch `epoch` (1-based), as indices into the pairs, in training order.
    /// A pure function of `(seed, epoch)`.
    pub fn plan(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut rng =
            StdRng::seed_from_u64(self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        order.shuffle(&mut rng);
        if self.pool_batches == 0 {
            return order.chunks(self.batch_size).map(<[_]>::to_vec).collect();
        }
        let mut batches = Vec::with_capacity(self.batches_per_epoch());
        for pool in order.chunks(self.batch_size * self.pool_batches) {
            let mut pool = pool.to_vec();
            // Stable sort: ties keep the shuffled order.
            pool.sort_by_key(|&i| {
                let p = &self.items[i];
                (p.source.len().max(p.target.len()), p.source.len())
            });
            let mut cut: Vec<Vec<usize>> =
                pool.chunks(self.batch_size).map(<[_]>::to_vec).collect();
            cut.shuffle(&mut rng);
            batches.extend(cut);
        }
        batches
    }

    /// The pairs at `indices`, padded into one batch on `device`.
    pub fn batch<B: Backend>(&self, indices: &[usize], device: &B::Device) -> Seq2SeqBatch<B> {
        let pairs = indices.iter().map(|&i| self.items[i].clone()).collect();
        Batcher::<B, _, _>::batch(&Seq2SeqBatcher, pairs, device)
    }
}

/// A burn [`DataLoader`] over [`EpochBatches`]: its `n`-th `iter()` yields epoch `first + n`.
/// Progress counts the pairs yielded so far out of all training pairs.
#[derive(Debug)]
pub struct EpochLoader<B: Backend> {
    batches: EpochBatches,
    next_epoch: Arc<AtomicUsize>,
    device: B::Device,
}

impl<B: Backend> EpochLoader<B> {
    /// A loader whose first `iter()` is epoch `first_epoch` (1-based).
    pub fn new(batches: EpochBatches, first_epoch: usize, device: B::Device) -> Self {
        Self {
            batches,
            next_epoch: Arc::new(AtomicUsize::new(first_epoch)),
            device,
        }
    }
}

struct EpochIter<'a, B: Backend> {
    loader: &'a EpochLoader<B>,
    plan: std::vec::IntoIter<Vec<usize>>,
    done: usize,
}

impl<B: Backend> Iterator for EpochIter<'_, B> {
    type Item = Seq2SeqBatch<B>;

    fn next(&mut self) -> Option<Seq2SeqBatch<B>> {
        let indices = self.plan.next()?;
        self.done += indices.len();
        Some(self.loader.batches.batch(&indices, &self.loader.device))
    }
}

impl<B: Backend> DataLoaderIterator<Seq2SeqBatch<B>> for EpochIter<'_, B> {
    fn progress(&self) -> Progress {
        Progress {
            items_processed: self.done,
            items_total: self.loader.batches.num_items(),
        }
    }
}

impl<B: Backend> DataLoader<B, Seq2SeqBatch<B>> for EpochLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Seq2SeqBatch<B>> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        Box::new(EpochIter {
            loader: self,
            plan: self.batches.plan(epoch).into_iter(),
            done: 0,
        })
    }

    fn num_items(&self) -> usize {
        self.batches.num_items()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, Seq2SeqBatch<B>>> {
        Arc::new(Self {
            batches: self.batches.clone(),
            next_epoch: self.next_epoch.clone(),
            device: device.clone(),
        })
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, Seq2SeqBatch<B>>> {
        let items = self.batches.items[start..end.min(self.batches.items.len())].to_vec();
        Arc::new(Self {
            batches: EpochBatches::new(
                items,
                self.batches.batch_size,
                self.batches.pool_batches,
                self.batches.seed,
            ),
            next_epoch: self.next_epoch.clone(),
            device: self.device.clone(),
        })
    }
}

/// The training loader: pairs shuffled every epoch (seeded by `(seed, epoch)`) and, when
/// `pool_batches > 0`, length-bucketed; `pool_batches = 0` gives plain random batches. Its
/// first `iter()` is epoch 1.
pub fn training_loader<B: Backend>(
    items: Vec<TokenizedPair>,
    batch_size: usize,
    pool_batches: usize,
    seed: u64,
    device: B::Device,
) -> Arc<dyn DataLoader<B, Seq2SeqBatch<B>>> {
    Arc::new(EpochLoader::new(
        EpochBatches::new(items, batch_size, pool_batches, seed),
        1,
        device,
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

    fn items() -> Vec<TokenizedPair> {
        // 103 pairs with lengths cycling 1..=40, ids unique.
        (0..103)
            .map(|i| pair(i, 1 + (i as usize * 7) % 40))
            .collect()
    }

    fn ids(plan: &[Vec<usize>]) -> Vec<usize> {
        plan.iter().map(|b| b[0]).collect()
    }

    #[test]
    fn every_pair_once_and_batches_are_length_homogeneous() {
        let batches = EpochBatches::new(items(), 8, 4, 1);
        let plan = batches.plan(1);
        let mut seen: Vec<usize> = plan.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
        assert_eq!(
            plan.len(),
            13,
            "3 pools of 32 → 12 batches, the tail of 7 → 1 batch"
        );
        assert_eq!(batches.batches_per_epoch(), 13);
        assert!(plan.iter().all(|b| b.len() <= 8));
        // Padding: bucketed batches waste far less than the same pairs in arrival order.
        let all = items();
        let waste = |bs: &[Vec<usize>]| -> usize {
            bs.iter()
                .map(|b| {
                    let max = b.iter().map(|&i| all[i].source.len()).max().unwrap_or(0);
                    b.iter().map(|&i| max - all[i].source.len()).sum::<usize>()
                })
                .sum()
        };
        let plain: Vec<Vec<usize>> = (0..103)
            .collect::<Vec<_>>()
            .chunks(8)
            .map(<[_]>::to_vec)
            .collect();
        assert!(
            waste(&plan) * 3 < waste(&plain),
            "{} vs {}",
            waste(&plan),
            waste(&plain)
        );
    }

    #[test]
    fn batch_order_is_a_function_of_seed_and_epoch_only() {
        let a = EpochBatches::new(items(), 8, 4, 7);
        let b = EpochBatches::new(items(), 8, 4, 7);
        // Epoch 2 asked first (a resumed process) is the epoch 2 of the uninterrupted run.
        let b2 = b.plan(2);
        assert_eq!(ids(&a.plan(1)), ids(&b.plan(1)));
        assert_eq!(a.plan(2), b2);
        assert_ne!(
            ids(&a.plan(1)),
            ids(&a.plan(2)),
            "each epoch has its own order"
        );
        assert_ne!(
            ids(&a.plan(1)),
            ids(&EpochBatches::new(items(), 8, 4, 8).plan(1)),
            "another seed, another order"
        );
        for pool in [0, 1, 3, 4, 100] {
            for n in [1, 7, 8, 9, 103] {
                let e = EpochBatches::new(items()[..n].to_vec(), 8, pool, 1);
                assert_eq!(e.plan(3).len(), e.batches_per_epoch(), "pool {pool} n {n}");
            }
        }
    }

    #[test]
    fn loader_covers_the_dataset_each_epoch_and_counts_pairs() {
        type B = burn::backend::NdArray<f32>;
        let loader = training_loader::<B>(items(), 8, 4, 3, Default::default());
        for _ in 0..2 {
            let mut iter = loader.iter();
            let mut rows = 0;
            let mut last = 0;
            while let Some(batch) = iter.next() {
                rows += batch.source.dims()[0];
                let progress = iter.progress();
                assert_eq!(progress.items_processed, rows, "progress counts pairs");
                assert!(progress.items_processed > last);
                last = progress.items_processed;
                assert_eq!(progress.items_total, 103);
            }
            assert_eq!(rows, 103);
        }
    }
}
