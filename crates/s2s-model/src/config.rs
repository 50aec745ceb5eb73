//! The `[model]` section of an experiment: a Transformer encoder, an optional adapter and a
//! decoder. Plain serde structs (not burn's `#[derive(Config)]`) because a misspelt key must be
//! an error (`deny_unknown_fields`), which burn's derive cannot express; the leaf modules keep
//! burn's `Config` triad.

use serde::{Deserialize, Serialize};

use crate::feedforward::Activation;

/// Why a model configuration was refused. Each message is one sentence meant for a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// How token positions are encoded.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PositionKind {
    /// Fixed sin/cos table of "Attention Is All You Need" (Vaswani et al., 2017, §3.5).
    Sinusoidal,
    /// A trained embedding per position (BERT, GPT-2).
    Learned,
}

/// How encoder states are mapped into the decoder's space.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// Identity; requires `encoder.d_model == decoder.d_model`.
    None,
    /// One linear map `d_enc → d_dec`.
    Linear,
    /// Bottleneck MLP `d_enc → d_hidden → d_dec` followed by LayerNorm (a residual is added when
    /// the two widths match, as in Houlsby et al., 2019).
    Mlp,
}

/// Which encoder–decoder architecture `[model]` builds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModelFamily {
    /// Transformer encoder (or a pre-trained BERT), adapter and Transformer decoder.
    #[default]
    Transformer,
    /// LSTM/GRU encoder and an attentional LSTM/GRU decoder (`[model.rnn]`).
    Rnn,
}

/// The recurrent cell of the RNN family.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Long short-term memory (Hochreiter & Schmidhuber, 1997), PyTorch's `nn.LSTM` equations.
    Lstm,
    /// Gated recurrent unit (Cho et al., 2014), PyTorch's `nn.GRU` equations.
    Gru,
}

/// How the RNN decoder scores encoder states against its hidden state.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKind {
    /// Additive: `vᵀ tanh(W_q h_t + W_k h̄_s)` (Bahdanau et al., 2015, eq. A.1.2; OpenNMT-py's
    /// `global_attention mlp`).
    Bahdanau,
    /// Multiplicative "general": `h_tᵀ W_a h̄_s` (Luong et al., 2015, eq. 8).
    Luong,
}

/// The `[model.rnn]` section: sizes of the LSTM/GRU encoder–decoder with attention.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RnnConfig {
    /// `lstm` or `gru`, for encoder and decoder. Default: `lstm`.
    pub cell: CellKind,
    /// `bahdanau` or `luong`. Default: `luong`.
    pub attention: AttentionKind,
    /// Width of the source and target token embeddings. Default: 256.
    pub embedding_size: usize,
    /// Hidden size of every recurrent layer (each direction of the encoder) and of the
    /// attentional state. Default: 512.
    pub hidden_size: usize,
    /// Recurrent layers in the encoder and in the decoder. Default: 2.
    pub n_layers: usize,
    /// Read the source in both directions (the encoder's states are `2 × hidden_size` wide and a
    /// bridge maps its final states to the decoder's). Default: `true`.
    pub bidirectional: bool,
}

impl Default for RnnConfig {
    fn default() -> Self {
        Self {
            cell: CellKind::Lstm,
            attention: AttentionKind::Luong,
            embedding_size: 256,
            hidden_size: 512,
            n_layers: 2,
            bidirectional: true,
        }
    }
}

/// One stack of Transformer layers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StackConfig {
    /// Width of the residual stream. Default: 512.
    pub d_model: usize,
    /// Attention heads; must divide `d_model`. Default: 8.
    pub n_heads: usize,
    /// Number of layers. Default: 6.
    pub n_layers: usize,
    /// Inner width of the feed-forward block. Default: 2048.
    pub d_ff: usize,
}

impl Default for StackConfig {
    fn default() -> Self {
        // Transformer-base (Vaswani et al., 2017, Table 3).
        Self {
            d_model: 512,
            n_heads: 8,
            n_layers: 6,
            d_ff: 2048,
        }
    }
}

impl StackConfig {
    fn validate(&self, role: &str) -> Result<(), ConfigError> {
        if self.d_model == 0 || self.n_heads == 0 || self.d_ff == 0 {
            return Err(invalid(format!(
                "model.{role}: d_model, n_heads and d_ff must all be greater than 0"
            )));
        }
        if self.n_layers == 0 {
            return Err(invalid(format!("model.{role}.n_layers must be at least 1")));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(invalid(format!(
                "model.{role}.d_model ({}) must be divisible by model.{role}.n_heads ({})",
                self.d_model, self.n_heads
            )));
        }
        Ok(())
    }
}

/// The adapter between encoder and decoder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdapterConfig {
    /// `none`, `linear` or `mlp`. Default: `none`.
    pub kind: AdapterKind,
    /// Hidden width of the `mlp` adapter. Default: the decoder's `d_model`.
    pub d_hidden: Option<usize>,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        Self {
            kind: AdapterKind::None,
            d_hidden: None,
        }
    }
}

/// The whole encoder–adapter–decoder model, as written under `[model]` in an experiment file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `transformer` or `rnn`. Default: `transformer`.
    pub family: ModelFamily,
    /// Sizes of the RNN family (only with `family = "rnn"`). Default: see [`RnnConfig`].
    pub rnn: Option<RnnConfig>,
    /// A pre-trained BERT as the encoder: a name `s2s data prepare` knows (`minilm-l6`) or a
    /// directory with a Hugging Face BERT (`config.json`, `model.safetensors`,
    /// `tokenizer.json`). Its dimensions and WordPiece tokenizer replace `encoder` and the
    /// source-side BPE. Default: none (a Transformer encoder trained from scratch).
    pub bert: Option<String>,
    /// Encoder stack (ignored with `bert`). Default: Transformer-base.
    pub encoder: StackConfig,
    /// Decoder stack. Default: Transformer-base.
    pub decoder: StackConfig,
    /// Adapter between them. Default: `none`.
    pub adapter: AdapterConfig,
    /// `sinusoidal` or `learned`. Default: `sinusoidal`.
    pub positions: PositionKind,
    /// Longest sequence the position table covers, source or target. Default: 512.
    pub max_positions: usize,
    /// Dropout on embeddings, residual branches and FFN activations. Default: 0.1.
    pub dropout: f64,
    /// Dropout on attention probabilities. Default: 0.0.
    pub attention_dropout: f64,
    /// `relu` or `gelu`. Default: `relu`.
    pub activation: Activation,
    /// Pre-norm (`true`, LayerNorm before each sub-layer, plus a final LayerNorm) or post-norm
    /// (`false`, the original Transformer). Default: `true`.
    pub norm_first: bool,
    /// Share the target embedding matrix with the output projection (Press & Wolf, 2017).
    /// Default: `true`.
    pub tie_output_embedding: bool,
    /// LayerNorm epsilon. Default: 1e-5.
    pub layer_norm_eps: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            family: ModelFamily::Transformer,
            rnn: None,
            bert: None,
            encoder: StackConfig::default(),
            decoder: StackConfig::default(),
            adapter: AdapterConfig::default(),
            positions: PositionKind::Sinusoidal,
            max_positions: 512,
            dropout: 0.1,
            attention_dropout: 0.0,
            activation: Activation::Relu,
            norm_first: true,
            tie_output_embedding: true,
            layer_norm_eps: 1e-5,
        }
    }
}

/// Vocabulary sizes come from the trained tokenizers, not from the experiment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VocabSizes {
    pub source: usize,
    pub target: usize,
}

impl ModelConfig {
    /// The `[model.rnn]` section in effect (its defaults when the section is absent).
    pub fn rnn(&self) -> RnnConfig {
        self.rnn.clone().unwrap_or_default()
    }

    /// Width of the decoder's output states (what Noam's schedule calls `d_model`): the
    /// Transformer decoder's `d_model`, the RNN's `hidden_size`.
    pub fn decoder_width(&self) -> usize {
        match self.family {
            ModelFamily::Transformer => self.decoder.d_model,
            ModelFamily::Rnn => self.rnn().hidden_size,
        }
    }

    /// Checks every constraint the modules rely on, with one sentence per problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.family {
            ModelFamily::Rnn => return self.validate_rnn(),
            ModelFamily::Transformer if self.rnn.is_some() => {
                return Err(invalid(
                    "model.rnn (cell, attention, ...) applies only to family = \"rnn\"; this \
                     model is a Transformer",
                ));
            }
            ModelFamily::Transformer => {}
        }
        if self.bert.is_some() {
            if self.encoder != StackConfig::default() {
                return Err(invalid(
                    "model.encoder does not apply when model.bert is set: the encoder's \
                     dimensions come from the BERT's config.json",
                ));
            }
            if self.bert.as_deref().is_some_and(|b| b.trim().is_empty()) {
                return Err(invalid(
                    "model.bert is empty: name a pre-trained BERT or a directory",
                ));
            }
        } else {
            self.encoder.validate("encoder")?;
        }
        self.decoder.validate("decoder")?;
        self.validate_shared()?;
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(invalid("model.layer_norm_eps must be greater than 0"));
        }
        let odd = |d: usize| !d.is_multiple_of(2);
        if self.positions == PositionKind::Sinusoidal
            && ((self.bert.is_none() && odd(self.encoder.d_model)) || odd(self.decoder.d_model))
        {
            return Err(invalid(
                "sinusoidal positions need an even d_model in encoder and decoder",
            ));
        }
        match self.adapter.kind {
            AdapterKind::None
                if self.bert.is_none() && self.encoder.d_model != self.decoder.d_model =>
            {
                return Err(invalid(format!(
                    "model.adapter.kind = \"none\" needs encoder.d_model ({}) == decoder.d_model \
                     ({}); use \"linear\" or \"mlp\" to map between them",
                    self.encoder.d_model, self.decoder.d_model
                )));
            }
            AdapterKind::Mlp if self.adapter.d_hidden == Some(0) => {
                return Err(invalid("model.adapter.d_hidden must be greater than 0"));
            }
            _ => {}
        }
        Ok(())
    }

    /// The keys both families read: dropout probabilities and the position limit.
    fn validate_shared(&self) -> Result<(), ConfigError> {
        for (name, p) in [
            ("dropout", self.dropout),
            ("attention_dropout", self.attention_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(invalid(format!("model.{name} must be in [0, 1), got {p}")));
            }
        }
        if self.max_positions == 0 {
            return Err(invalid("model.max_positions must be greater than 0"));
        }
        Ok(())
    }

    /// The RNN family's constraints: its sizes are in `[model.rnn]`, and the Transformer-only
    /// keys must keep their defaults so that no setting is silently ignored.
    fn validate_rnn(&self) -> Result<(), ConfigError> {
        let rnn = self.rnn();
        if self.bert.is_some() {
            return Err(invalid(
                "model.bert needs family = \"transformer\": the RNN family has its own encoder",
            ));
        }
        let defaults = ModelConfig::default();
        let transformer_only = [
            ("encoder", self.encoder != defaults.encoder),
            ("decoder", self.decoder != defaults.decoder),
            ("adapter", self.adapter != defaults.adapter),
            ("positions", self.positions != defaults.positions),
            ("activation", self.activation != defaults.activation),
            ("norm_first", self.norm_first != defaults.norm_first),
            (
                "attention_dropout",
                self.attention_dropout != defaults.attention_dropout,
            ),
            (
                "layer_norm_eps",
                self.layer_norm_eps != defaults.layer_norm_eps,
            ),
        ];
        if let Some((key, _)) = transformer_only.iter().find(|(_, changed)| *changed) {
            return Err(invalid(format!(
                "model.{key} applies only to family = \"transformer\"; the RNN family's sizes \
                 are in [model.rnn]"
            )));
        }
        if rnn.embedding_size == 0 || rnn.hidden_size == 0 {
            return Err(invalid(
                "model.rnn.embedding_size and model.rnn.hidden_size must be greater than 0",
            ));
        }
        if rnn.n_layers == 0 {
            return Err(invalid("model.rnn.n_layers must be at least 1"));
        }
        self.validate_shared()?;
        if self.tie_output_embedding && rnn.embedding_size != rnn.hidden_size {
            return Err(invalid(format!(
                "tie_output_embedding needs model.rnn.embedding_size ({}) == \
                 model.rnn.hidden_size ({}), or set model.tie_output_embedding = false",
                rnn.embedding_size, rnn.hidden_size
            )));
        }
        Ok(())
    }

    /// [`Self::validate`] for a model whose encoder is the BERT `bert` describes, with a target
    /// vocabulary of `target_vocab` ids.
    pub fn validate_with_bert(
        &self,
        bert: &crate::BertConfig,
        target_vocab: usize,
    ) -> Result<(), ConfigError> {
        self.validate()?;
        if self.bert.is_none() {
            return Err(invalid("a BERT encoder needs model.bert to be set"));
        }
        if self.adapter.kind == AdapterKind::None && bert.hidden_size != self.decoder.d_model {
            return Err(invalid(format!(
                "model.adapter.kind = \"none\" needs the BERT's hidden_size ({}) == \
                 decoder.d_model ({}); use \"linear\" or \"mlp\" to map between them",
                bert.hidden_size, self.decoder.d_model
            )));
        }
        let min = crate::special::UNK as usize + 1;
        if target_vocab < min {
            return Err(invalid(format!(
                "the target vocabulary must hold more than the {min} special tokens, got \
                 {target_vocab}"
            )));
        }
        Ok(())
    }

    /// Checks the vocabulary sizes against the reserved special ids as well as [`Self::validate`].
    pub fn validate_with(&self, vocab: VocabSizes) -> Result<(), ConfigError> {
        self.validate()?;
        let min = crate::special::UNK as usize + 1;
        if vocab.source < min || vocab.target < min {
            return Err(invalid(format!(
                "vocabularies must hold more than the {min} special tokens (source {}, target {})",
                vocab.source, vocab.target
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_heads_that_do_not_divide_width() {
        let mut c = ModelConfig::default();
        c.encoder.d_model = 2;
        c.encoder.n_heads = 4;
        c.adapter.kind = AdapterKind::Linear;
        let err = c.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "model.encoder.d_model (2) must be divisible by model.encoder.n_heads (4)"
        );
    }

    #[test]
    fn rejects_width_mismatch_without_adapter() {
        let mut c = ModelConfig::default();
        c.decoder.d_model = 256;
        c.decoder.n_heads = 4;
        assert!(c.validate().unwrap_err().to_string().contains("adapter"));
        c.adapter.kind = AdapterKind::Linear;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn rejects_bad_dropout_and_tiny_vocab() {
        let c = ModelConfig {
            dropout: 1.0,
            ..ModelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.dropout"));
        let c = ModelConfig::default();
        assert!(c
            .validate_with(VocabSizes {
                source: 3,
                target: 100
            })
            .is_err());
        assert!(c
            .validate_with(VocabSizes {
                source: 5,
                target: 100
            })
            .is_ok());
    }

    #[test]
    fn a_bert_encoder_replaces_the_encoder_section() {
        let bert: crate::BertConfig = serde_json::from_str(
            r#"{"vocab_size": 100, "hidden_size": 384, "num_hidden_layers": 1,
                "num_attention_heads": 12, "intermediate_size": 64,
                "max_position_embeddings": 32, "type_vocab_size": 2,
                "layer_norm_eps": 1e-12, "hidden_act": "gelu"}"#,
        )
        .unwrap();
        let mut c = ModelConfig {
            bert: Some("minilm-l6".into()),
            ..ModelConfig::default()
        };
        // The default decoder is 512 wide: "none" cannot map 384 to it.
        let err = c.validate_with_bert(&bert, 100).unwrap_err().to_string();
        assert!(
            err.contains("hidden_size (384) == decoder.d_model (512)"),
            "{err}"
        );
        c.adapter.kind = AdapterKind::Linear;
        assert_eq!(c.validate_with_bert(&bert, 100), Ok(()));
        assert!(
            c.validate_with_bert(&bert, 3).is_err(),
            "too small a target vocabulary"
        );
        // A scratch-encoder init refuses a BERT config, and the encoder section must stay out.
        let vocab = VocabSizes {
            source: 100,
            target: 100,
        };
        let err = c
            .init::<burn::backend::NdArray>(vocab, &Default::default())
            .unwrap_err();
        assert!(err.to_string().contains("init_with_bert"), "{err}");
        c.encoder.n_layers = 2;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.encoder does not apply"));
        let plain = ModelConfig::default();
        assert!(
            plain.validate_with_bert(&bert, 100).is_err(),
            "needs model.bert"
        );
    }

    #[test]
    fn bad_rnn_configs_give_one_sentence_each() {
        let parse = |text: &str| toml::from_str::<ModelConfig>(text);
        let refused = |text: &str| -> String {
            match parse(text) {
                Err(e) => e.message().to_string(),
                Ok(c) => c.validate().unwrap_err().to_string(),
            }
        };
        let cases = [
            (
                "family = \"rnn\"\n[rnn]\ncell = \"rnn\"\n",
                "unknown variant `rnn`, expected `lstm` or `gru`",
            ),
            (
                "family = \"rnn\"\n[rnn]\nattention = \"dot\"\n",
                "unknown variant `dot`, expected `bahdanau` or `luong`",
            ),
            (
                "[rnn]\nattention = \"luong\"\n",
                "model.rnn (cell, attention, ...) applies only to family = \"rnn\"",
            ),
            (
                "family = \"rnn\"\n[rnn]\ndecoder_bidirectional = true\n",
                "unknown field `decoder_bidirectional`",
            ),
            (
                "family = \"rnn\"\n[decoder]\nn_layers = 2\n",
                "model.decoder applies only to family = \"transformer\"",
            ),
            (
                "family = \"rnn\"\nbert = \"minilm-l6\"\n",
                "model.bert needs family = \"transformer\"",
            ),
            (
                "family = \"rnn\"\n[rnn]\nembedding_size = 128\nhidden_size = 256\n",
                "tie_output_embedding needs model.rnn.embedding_size (128) == \
                 model.rnn.hidden_size (256)",
            ),
            (
                "family = \"rnn\"\n[rnn]\nn_layers = 0\n",
                "model.rnn.n_layers must be at least 1",
            ),
            (
                "family = \"lstm\"\n",
                "unknown variant `lstm`, expected `transformer` or `rnn`",
            ),
        ];
        for (text, expected) in cases {
            let message = refused(text);
            assert!(message.contains(expected), "{text:?}: {message}");
            assert_eq!(message.lines().count(), 1, "{text:?}: {message}");
        }
        let ok = parse(
            "family = \"rnn\"\ntie_output_embedding = false\n[rnn]\ncell = \"gru\"\n\
             embedding_size = 128\n",
        )
        .unwrap();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.rnn().cell, CellKind::Gru);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<ModelConfig>("[encoder]\nd_modle = 4\n").unwrap_err();
        assert!(err.to_string().contains("d_modle"), "{err}");
    }
}
