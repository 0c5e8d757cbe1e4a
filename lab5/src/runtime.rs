//! Device, threads and seeding for libtorch.
//!
//! `auto` picks CUDA when libtorch can see a GPU. Because rustc links with `--as-needed`,
//! `libtorch_cuda` may not be loaded in a notebook kernel; [`load_cuda`] loads it by hand.

use crate::config::{Config, Precision};
use anyhow::{bail, Result};
use tch::{Device, Kind};

/// Loads `libtorch_cuda` into the process when it sits next to `libtorch_cpu`, so that
/// `tch::Cuda::is_available()` can answer truthfully. Harmless where it is absent.
pub(crate) fn load_cuda() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for name in ["libtorch_cuda.so\0", "libtorch_cuda.dylib\0"] {
            // SAFETY: dlopen with a NUL-terminated name; the handle is kept for the
            // life of the process on purpose.
            let h =
                unsafe { libc::dlopen(name.as_ptr().cast(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if !h.is_null() {
                break;
            }
        }
    });
}

/// Parses a device setting: `auto`, `cpu`, `cuda` or `cuda:N`.
pub(crate) fn parse_device(s: &str) -> Result<Device> {
    load_cuda();
    Ok(match s {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => cuda_or_fail(0)?,
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => cuda_or_fail(n)?,
            None => bail!("runtime.device: {other:?} is not one of auto, cpu, cuda, cuda:N"),
        },
    })
}

fn cuda_or_fail(n: usize) -> Result<Device> {
    if !tch::Cuda::is_available() {
        bail!("runtime.device asks for CUDA but libtorch sees no GPU; use \"auto\" or \"cpu\"");
    }
    if n >= tch::Cuda::device_count() as usize {
        bail!("runtime.device: cuda:{n} does not exist");
    }
    Ok(Device::Cuda(n))
}

/// Applies threads and seed from the config and returns the device to use.
///
/// Sets `OMP_WAIT_POLICY=PASSIVE` when unset (before libtorch starts its thread pool):
/// on shared 2-core machines busy-waiting OpenMP threads halve throughput.
pub fn init(cfg: &Config) -> Result<Device> {
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        // SAFETY: called before any other thread of ours reads the environment.
        unsafe { std::env::set_var("OMP_WAIT_POLICY", "PASSIVE") };
    }
    tch::set_num_threads(cfg.runtime.threads as i32);
    tch::manual_seed(cfg.runtime.seed as i64);
    parse_device(&cfg.runtime.device)
}

/// True when the CPU has native bfloat16 dot products (AVX512-BF16; every CPU with AMX has
/// it too): there oneDNN runs bf16 convolutions about twice as fast as fp32 ones.
/// Elsewhere bf16 is emulated and slower than fp32.
pub(crate) fn cpu_has_native_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kind the CNN's convolutions compute in while training: `bf16` (or `auto` on a CPU
/// with native bf16) gives `Kind::BFloat16`, everything else `Kind::Float`. `auto` keeps
/// fp32 on GPUs.
pub fn training_kind(precision: Precision, device: Device) -> Kind {
    match precision {
        Precision::Bf16 => Kind::BFloat16,
        Precision::Auto if device == Device::Cpu && cpu_has_native_bf16() => Kind::BFloat16,
        _ => Kind::Float,
    }
}

/// How [`training_kind`] reads for people: `bf16` or `fp32`.
pub fn kind_name(kind: Kind) -> &'static str {
    if kind == Kind::BFloat16 {
        "bf16"
    } else {
        "fp32"
    }
}
