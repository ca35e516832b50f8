//! Builds every guest of `examples/guests` for `wasm32-wasip2` with a nested
//! cargo (its own target directory, so it never waits on the outer build's
//! lock) and generates one path constant per guest plus `foreach_guest!`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let guests = manifest_dir.join("..").join("guests");
    let wit = manifest_dir.join("..").join("..").join("wit");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out_dir.join("guests-target");

    println!("cargo:rerun-if-changed={}", wit.display());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.lock").display()
    );

    // Source shared by several guests (`#[path]` modules).
    println!("cargo:rerun-if-changed={}", guests.join("shared").display());
    let names = guest_names(&guests);
    for name in &names {
        println!("cargo:rerun-if-changed={}", guests.join(name).display());
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags and wrappers (clippy, coverage) are not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CLIPPY_ARGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo for the guests");
    if !status.success() {
        panic!(
            "building the guests failed; is the target installed? run `rustup target add {TARGET}`"
        );
    }

    let mut generated = String::new();
    for name in &names {
        // A library component (cdylib) is named with `_` for `-`.
        let release = target_dir.join(TARGET).join("release");
        let wasm = [name.clone(), name.replace('-', "_")]
            .iter()
            .map(|stem| release.join(format!("{stem}.wasm")))
            .find(|path| path.exists())
            .unwrap_or_else(|| release.join(format!("{name}.wasm")));
        assert!(
            wasm.exists(),
            "guest {name} was not built at {}",
            wasm.display()
        );
        generated.push_str(&format!(
            "/// The `{name}` guest component.\npub const {}: &str = {:?};\n",
            name.to_uppercase().replace('-', "_"),
            wasm.to_str().expect("UTF-8 path")
        ));
    }
    generated.push_str("/// Calls `$mac!(guest_name)` for every guest.\n#[macro_export]\nmacro_rules! foreach_guest {\n    ($mac:ident) => {\n");
    for name in &names {
        generated.push_str(&format!("        $mac!({});\n", name.replace('-', "_")));
    }
    generated.push_str("    };\n}\n");
    fs::write(out_dir.join("guests.rs"), generated).expect("write guests.rs");
}

/// Every directory of `guests` with a Cargo.toml, sorted.
fn guest_names(guests: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(guests)
        .expect("read examples/guests")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
