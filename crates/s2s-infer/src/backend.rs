//! The backend a run trains or decodes on, as a typed value from the config (`training.backend`)
//! and the command line (`--backend`) on. Which of them a binary can run depends on its cargo
//! features; the CLI turns a `BackendKind` into a Burn backend type in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Backends s2s knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum BackendKind {
    /// CPU, pure Rust (feature `ndarray`, on by default).
    #[default]
    Ndarray,
    /// Fast CPU (feature `flex`).
    Flex,
    /// Vulkan/Metal/DX12 through wgpu (feature `wgpu`).
    Wgpu,
    /// libtorch, CPU or CUDA (feature `tch`).
    Tch,
    /// NVIDIA GPUs through CubeCL (feature `cuda`).
    Cuda,
}

impl BackendKind {
    /// Every backend, in the order `s2s backends` lists them.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Ndarray,
        BackendKind::Flex,
        BackendKind::Wgpu,
        BackendKind::Tch,
        BackendKind::Cuda,
    ];

    /// The name used in configs and on the command line (`ndarray`, `flex`, …).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Tch => "tch",
            BackendKind::Cuda => "cuda",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown backend name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend \"{0}\"; expected one of ndarray, flex, wgpu, tch, cuda")]
pub struct UnknownBackend(pub String);

impl FromStr for BackendKind {
    type Err = UnknownBackend;

    /// Parses a backend name, ignoring ASCII case.
    ///
    /// # Errors
    /// [`UnknownBackend`] for a name that is none of [`BackendKind::ALL`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownBackend(name.to_string()))
    }
}

impl TryFrom<String> for BackendKind {
    type Error = UnknownBackend;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_parse_back_and_match_serde() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.to_string().parse::<BackendKind>().unwrap(), kind);
            assert_eq!(
                kind.name().to_uppercase().parse::<BackendKind>().unwrap(),
                kind
            );
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<BackendKind>(&json).unwrap(), kind);
        }
        let err = "cpu".parse::<BackendKind>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown backend \"cpu\"; expected one of ndarray, flex, wgpu, tch, cuda"
        );
    }
}
