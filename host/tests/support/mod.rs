//! Helpers shared by the host's integration tests that run guests.

#![allow(dead_code)] // each test binary uses a subset

use std::path::Path;

use wasikv_host::{Config, RunOptions, RunOutcome, Runtime, Stdio};

/// A config over a temporary directory: the default bucket and the cache live there.
pub fn config(dir: &Path, extra: &str) -> Config {
    let places = format!(
        "[runtime]\ndata_dir = {:?}\ncache_dir = {:?}\n",
        dir.join("data"),
        dir.join("cache")
    );
    let text = if extra.contains("[runtime]\n") {
        extra.replace("[runtime]\n", &places)
    } else {
        format!("{places}{extra}")
    };
    Config::from_toml(&text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"))
}

/// Runs `wasm` as component `name` to completion; a trap fails the test.
pub async fn run(
    runtime: &Runtime,
    wasm: &str,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> RunOutcome {
    let component = runtime.load(Path::new(wasm)).expect("load component");
    runtime
        .run(
            &component,
            RunOptions {
                name: name.to_string(),
                args: args.iter().map(|s| s.to_string()).collect(),
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                stdio: Stdio::Capture,
            },
        )
        .await
        .expect("the component ran")
}
