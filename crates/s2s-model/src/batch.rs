//! The tensors one training/evaluation step consumes.

use burn::prelude::*;

/// Reserved token ids shared by every tokenizer s2s trains (`<pad> <s> </s> <unk>`).
pub mod special {
    /// Padding id; ignored by the loss and masked in attention.
    pub const PAD: u32 = 0;
    /// Beginning of sequence: the first decoder input token.
    pub const BOS: u32 = 1;
    /// End of sequence: appended to sources and to labels.
    pub const EOS: u32 = 2;
    /// Unknown token.
    pub const UNK: u32 = 3;
}

/// A padded batch with the teacher-forcing shift already applied (the batcher owns it).
///
/// # Shapes
/// - `source`: `[batch_size, src_len]`, `source_pad_mask`: `[batch_size, src_len]` (`true` = pad)
/// - `target_input`: `[batch_size, tgt_len]` = `<s> y1 … yn`
/// - `target_labels`: `[batch_size, tgt_len]` = `y1 … yn </s>`, `<pad>` elsewhere
/// - `target_pad_mask`: `[batch_size, tgt_len]` (`true` = pad)
#[derive(Clone, Debug)]
pub struct Seq2SeqBatch<B: Backend> {
    pub source: Tensor<B, 2, Int>,
    pub source_pad_mask: Tensor<B, 2, Bool>,
    pub target_input: Tensor<B, 2, Int>,
    pub target_labels: Tensor<B, 2, Int>,
    pub target_pad_mask: Tensor<B, 2, Bool>,
}
