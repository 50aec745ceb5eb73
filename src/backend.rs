//! The one place where a backend name becomes a concrete Burn backend type.

use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;

pub use s2s_infer::BackendKind;

/// Backends compiled into this binary, in the order `s2s backends` lists them.
pub fn compiled() -> Vec<BackendKind> {
    let mut kinds = Vec::new();
    if cfg!(feature = "ndarray") {
        kinds.push(BackendKind::Ndarray);
    }
    if cfg!(feature = "flex") {
        kinds.push(BackendKind::Flex);
    }
    if cfg!(feature = "wgpu") {
        kinds.push(BackendKind::Wgpu);
    }
    if cfg!(feature = "tch") {
        kinds.push(BackendKind::Tch);
    }
    if cfg!(feature = "cuda") {
        kinds.push(BackendKind::Cuda);
    }
    kinds
}

/// Fails with the cargo feature to enable when `kind` is not compiled in.
pub fn ensure_compiled(kind: BackendKind) -> anyhow::Result<()> {
    if compiled().contains(&kind) {
        return Ok(());
    }
    let setup = match kind {
        BackendKind::Tch => " (libtorch first: scripts/setup-tch.sh, see docs/backends.md)",
        BackendKind::Wgpu => " (without a GPU: scripts/setup-lavapipe.sh, see docs/backends.md)",
        _ => "",
    };
    anyhow::bail!(
        "the {kind} backend is not compiled into this binary; rebuild with `cargo build \
         --release --features {kind}`{setup}"
    )
}

/// Work that needs a concrete backend type with gradients (training, benchmarks).
pub trait BackendTask {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Work that needs a concrete backend type but no gradients (serving a trained model).
pub trait InferTask {
    type Output;
    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// The device a backend runs on: the default one, except libtorch, which takes the first CUDA
/// GPU when libtorch sees one and the CPU otherwise.
#[cfg(feature = "tch")]
pub fn tch_device() -> burn::backend::libtorch::LibTorchDevice {
    if tch::Cuda::is_available() {
        burn::backend::libtorch::LibTorchDevice::Cuda(0)
    } else {
        burn::backend::libtorch::LibTorchDevice::Cpu
    }
}

/// Runs `task` on the backend `kind`, or explains which cargo feature would enable it. This is
/// the one place where a backend name becomes a Burn backend type; all of them compute in f32.
pub fn dispatch<T: BackendTask>(kind: BackendKind, task: T) -> anyhow::Result<T::Output> {
    use burn::backend::Autodiff;
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => {
            task.run::<Autodiff<burn::backend::NdArray<f32>>>(Default::default())
        }
        #[cfg(feature = "flex")]
        BackendKind::Flex => task.run::<Autodiff<burn::backend::Flex>>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => task.run::<Autodiff<burn::backend::Wgpu<f32>>>(Default::default()),
        #[cfg(feature = "tch")]
        BackendKind::Tch => task.run::<Autodiff<burn::backend::LibTorch<f32>>>(tch_device()),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            ensure_cuda_runs()?;
            task.run::<Autodiff<burn::backend::Cuda<f32>>>(Default::default())
        }
        #[allow(unreachable_patterns)]
        other => {
            ensure_compiled(other)?;
            anyhow::bail!("the {other} backend is compiled in but has no dispatch arm")
        }
    }
}

/// Set in the environment of `s2s backends --probe` children: the probe is the check itself.
pub const PROBING: &str = "S2S_PROBING";

/// A binary built with `cuda` runs everywhere and loads the CUDA driver when the backend first
/// starts; without one, cubecl panics in its device thread. So the backend is first probed in
/// a child process (`s2s backends --probe cuda`, a few seconds on a GPU), and a machine
/// without a usable CUDA device gets one sentence instead of a backtrace.
#[cfg(feature = "cuda")]
fn ensure_cuda_runs() -> anyhow::Result<()> {
    if std::env::var_os(PROBING).is_some() {
        return Ok(());
    }
    match crate::backends::probe_in_child(BackendKind::Cuda, std::time::Duration::from_secs(300))? {
        crate::backends::Status::Usable(_) => Ok(()),
        crate::backends::Status::Failed(why) => anyhow::bail!(
            "the cuda backend is compiled in but cannot run here ({why}); it needs an NVIDIA GPU \
             and its driver (`s2s backends` lists what runs here)"
        ),
    }
}

/// Runs `task` on the plain (non-autodiff) backend `kind`: [`dispatch`]'s backends without
/// the autodiff wrapper.
pub fn dispatch_infer<T: InferTask>(kind: BackendKind, task: T) -> anyhow::Result<T::Output> {
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => task.run::<burn::backend::NdArray<f32>>(Default::default()),
        #[cfg(feature = "flex")]
        BackendKind::Flex => task.run::<burn::backend::Flex>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => task.run::<burn::backend::Wgpu<f32>>(Default::default()),
        #[cfg(feature = "tch")]
        BackendKind::Tch => task.run::<burn::backend::LibTorch<f32>>(tch_device()),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            ensure_cuda_runs()?;
            task.run::<burn::backend::Cuda<f32>>(Default::default())
        }
        #[allow(unreachable_patterns)]
        other => {
            ensure_compiled(other)?;
            anyhow::bail!("the {other} backend is compiled in but has no dispatch arm")
        }
    }
}

/// Sets the intra-op threads of the CPU backends to `threads` (0 keeps every library's default,
/// every logical CPU): rayon's global pool, which burn-ndarray and burn-flex run on,
/// matrixmultiply's pool for ndarray's matmuls (`MATMUL_NUM_THREADS`, read when it first
/// starts) and libtorch's intra-op pool. Call it once, before the first tensor operation.
pub fn set_threads(threads: usize) -> anyhow::Result<()> {
    if threads == 0 {
        return Ok(());
    }
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| anyhow::anyhow!("cannot start {threads} threads: {e}"))?;
    #[cfg(feature = "tch")]
    tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
    Ok(())
}

/// Threads the CPU backends use with `training.threads = threads`.
pub fn effective_threads(threads: usize) -> usize {
    if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}
