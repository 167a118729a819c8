//! Records the compiler's version for `sluice version` (Argo prints its Go version there).
//! Release builds may also set `SLUICE_GIT_COMMIT`, `SLUICE_GIT_TAG`, `SLUICE_GIT_TREE_STATE`
//! and `SLUICE_BUILD_DATE` in the environment; the binary reads those with `option_env!`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SLUICE_RUSTC_VERSION={version}");
}
