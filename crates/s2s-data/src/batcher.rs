//! Turns tokenised pairs into padded tensors with the teacher-forcing shift applied.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::tensor::TensorData;
use s2s_model::{special, Seq2SeqBatch};

use crate::TokenizedPair;

/// Pads a batch to its longest source and target and applies the teacher-forcing shift:
///
/// - `source` = the item's source as is (its specials already added, e.g. `x1 … xm </s>`), then
///   `<pad>`
/// - `target_input` = `<s> y1 … yn`, then `<pad>`
/// - `target_labels` = `y1 … yn </s>`, then `<pad>`
/// - the pad masks are `true` exactly where the padding was added (built from lengths, not from
///   the ids, so they are right even if a token id collided with `<pad>`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Seq2SeqBatcher;

impl<B: Backend> Batcher<B, TokenizedPair, Seq2SeqBatch<B>> for Seq2SeqBatcher {
    fn batch(&self, items: Vec<TokenizedPair>, device: &B::Device) -> Seq2SeqBatch<B> {
        let batch_size = items.len();
        // Sequences of length zero cannot occur: every row carries at least one special token.
        let src_len = items.iter().map(|p| p.source.len()).max().unwrap_or(1);
        let tgt_len = items.iter().map(|p| p.target.len() + 1).max().unwrap_or(1);

        let mut source = Padded::new(batch_size, src_len);
        let mut target_input = Padded::new(batch_size, tgt_len);
        let mut target_labels = Padded::new(batch_size, tgt_len);
        for item in &items {
            source.push_row(item.source.iter().copied());
            target_input.push_row(
                [special::BOS]
                    .into_iter()
                    .chain(item.target.iter().copied()),
            );
            target_labels.push_row(item.target.iter().copied().chain([special::EOS]));
        }

        let (source, source_pad_mask) = source.into_tensors(device);
        let (target_input, target_pad_mask) = target_input.into_tensors(device);
        let (target_labels, _) = target_labels.into_tensors(device);
        Seq2SeqBatch {
            source,
            source_pad_mask,
            target_input,
            target_labels,
            target_pad_mask,
        }
    }
}

/// Row-major ids and pad mask of a `[rows, len]` matrix under construction.
struct Padded {
    rows: usize,
    len: usize,
    ids: Vec<i64>,
    pad: Vec<bool>,
}

impl Padded {
    fn new(rows: usize, len: usize) -> Self {
        Self {
            rows,
            len,
            ids: Vec::with_capacity(rows * len),
            pad: Vec::with_capacity(rows * len),
        }
    }

    fn push_row(&mut self, ids: impl Iterator<Item = u32>) {
        let start = self.ids.len();
        self.ids.extend(ids.map(i64::from));
        let filled = self.ids.len() - start;
        self.pad.extend(std::iter::repeat_n(false, filled));
        self.ids.resize(start + self.len, i64::from(special::PAD));
        self.pad.resize(start + self.len, true);
    }

    fn into_tensors<B: Backend>(
        self,
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
        let shape = [self.rows, self.len];
        (
            Tensor::from_data(TensorData::new(self.ids, shape), device),
            Tensor::from_data(TensorData::new(self.pad, shape), device),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn ints(t: Tensor<B, 2, Int>) -> (Vec<usize>, Vec<i64>) {
        let data = t.into_data().convert::<i64>();
        (data.shape.to_vec(), data.to_vec::<i64>().expect("i64 data"))
    }

    fn bools(t: Tensor<B, 2, Bool>) -> (Vec<usize>, Vec<bool>) {
        let data = t.into_data();
        (
            data.shape.to_vec(),
            data.to_vec::<bool>().expect("bool data"),
        )
    }

    #[test]
    fn pads_shifts_and_masks_a_two_item_batch() {
        let items = vec![
            TokenizedPair {
                source: vec![10, 11, 12, 2],
                target: vec![20],
            },
            TokenizedPair {
                source: vec![13, 2],
                target: vec![21, 22, 23],
            },
        ];
        let batch: Seq2SeqBatch<B> = Seq2SeqBatcher.batch(items, &Default::default());

        // source as given (x + </s>), padded to 4.
        assert_eq!(
            ints(batch.source),
            (vec![2, 4], vec![10, 11, 12, 2, 13, 2, 0, 0])
        );
        assert_eq!(
            bools(batch.source_pad_mask),
            (
                vec![2, 4],
                vec![false, false, false, false, false, false, true, true]
            )
        );
        // target_input: <s> + y; target_labels: y + </s>; both padded to 4.
        assert_eq!(
            ints(batch.target_input),
            (vec![2, 4], vec![1, 20, 0, 0, 1, 21, 22, 23])
        );
        assert_eq!(
            ints(batch.target_labels),
            (vec![2, 4], vec![20, 2, 0, 0, 21, 22, 23, 2])
        );
        assert_eq!(
            bools(batch.target_pad_mask),
            (
                vec![2, 4],
                vec![false, false, true, true, false, false, false, false]
            )
        );
    }

    #[test]
    fn large_ids_and_empty_targets_survive_conversion() {
        // Ids beyond i16/u16 must not wrap when the i64 data is converted to the backend's int type.
        let items = vec![TokenizedPair {
            source: vec![65_000, 70_001, 2],
            target: vec![],
        }];
        let batch: Seq2SeqBatch<B> = Seq2SeqBatcher.batch(items, &Default::default());
        assert_eq!(ints(batch.source).1, vec![65_000, 70_001, 2]);
        assert_eq!(ints(batch.target_input), (vec![1, 1], vec![1]));
        assert_eq!(ints(batch.target_labels), (vec![1, 1], vec![2]));
    }
}
