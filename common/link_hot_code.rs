//! The build script of the crates with Lambda binaries (rollback, hooks, shift): a release
//! build for x86_64 links each binary with `hot-code-<binary>.ld` beside the crate's Cargo.toml,
//! when there is one — the functions the binary runs at start-up and in an invocation, placed
//! first and together, so that the code it does not run is not mapped into its memory (the
//! kernel maps code 64 KB around each page touched). `make hot-code` writes the scripts
//! (tests/bench/hot_code.py). Debug builds (the tests) link as before.

use std::env;
use std::path::Path;

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // SHIFTGUARD_HOT_CODE=off: linked as before (`make hot-code` profiles such a build: valgrind
    // reads no symbols outside `.text`).
    println!("cargo:rerun-if-env-changed=SHIFTGUARD_HOT_CODE");
    let wanted = env::var("SHIFTGUARD_HOT_CODE").as_deref() != Ok("off");
    let release = env::var("PROFILE").as_deref() == Ok("release") && wanted;
    // x86_64 Linux only: the scripts were measured there (`make bench`); an arm64 build has not
    // been linked with them yet (no aarch64 target on the machines that made them), and the
    // default deploy architecture must not be the first to try.
    let measured_target = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    let entries = std::fs::read_dir(&manifest_dir).expect("the crate's directory is readable");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(binary) = name
            .strip_prefix("hot-code-")
            .and_then(|n| n.strip_suffix(".ld"))
        else {
            continue;
        };
        let script = Path::new(&manifest_dir).join(&name);
        println!("cargo:rerun-if-changed={}", script.display());
        if release && measured_target {
            println!(
                "cargo:rustc-link-arg-bin={binary}=-Wl,-T,{}",
                script.display()
            );
        }
    }
}
