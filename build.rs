//! With the `tch` feature, torch-sys reports where the libtorch it linked lives
//! (`DEP_TCH_LIBTORCH_LIB`); recording that directory in the binaries' rpath lets `s2s` start
//! without `LD_LIBRARY_PATH` as long as that libtorch stays where it was built against.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if std::env::var_os("CARGO_FEATURE_TCH").is_some() {
        if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}
