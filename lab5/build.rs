//! Puts libtorch's library folder into the rpath of every binary and test of this crate,
//! so `lab5` and `cargo test` start without `LD_LIBRARY_PATH` (torch-sys adds no rpath).
//! When that folder holds `libtorch_cuda`, it is linked with `--no-as-needed` so that
//! `tch::Cuda::is_available()` can see the GPU (rustc links with `--as-needed`).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let cuda = Path::new(&dir).join("libtorch_cuda.so");
    if target_os == "linux" && cuda.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
