//! `wasikv serve` processes for the integration tests: started on
//! ephemeral ports with a config in a temporary directory, killed when
//! dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `wasikv serve` process on ephemeral ports, killed when dropped.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub log: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin.expect("started with --admin"))
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// The `wasikv` binary: `WASIKV_BIN`, else the one cargo built for the
/// integration tests.
pub fn wasikv_binary() -> std::path::PathBuf {
    std::env::var_os("WASIKV_BIN")
        .map(std::path::PathBuf::from)
        .or(option_env!("CARGO_BIN_EXE_wasikv").map(std::path::PathBuf::from))
        .expect("WASIKV_BIN: the wasikv binary to run")
}

/// Starts `wasikv serve COMPONENT` in `dir` with `config` (TOML, after the
/// places of the default bucket and cache under `dir`) and `args`. The
/// component may open every bucket (`access.unlisted = "allow"`) unless
/// `config` has its own `[access]` or `[components.*]` sections.
pub fn serve(dir: &Path, config: &str, component: &str, args: &[&str]) -> Served {
    let config_path = dir.join("wasikv.toml");
    let access = if config.contains("[access]") || config.contains("[components.") {
        ""
    } else {
        "[access]\nunlisted = \"allow\"\n"
    };
    let text = format!(
        "[runtime]\ndata_dir = {:?}\ncache_dir = {:?}\n{access}{config}",
        dir.join("data"),
        dir.join("cache")
    );
    std::fs::write(&config_path, text).unwrap();
    let mut cmd = Command::new(wasikv_binary());
    cmd.arg("serve")
        .arg(component)
        .arg("--config")
        .arg(&config_path)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("WASIKV_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd.spawn().expect("start wasikv serve");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving ") {
                    let _ = tx.send(line.clone());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) else {
        let _ = child.kill();
        let status = child.wait().unwrap();
        panic!(
            "wasikv serve did not start ({status}):\n{}",
            log.lock().unwrap()
        );
    };
    let addresses: Vec<SocketAddr> = line
        .split("http://")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| c == ')' || c.is_whitespace())
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|e| panic!("no address in {line:?}: {e}"))
        })
        .collect();
    Served {
        child,
        addr: addresses[0],
        admin: addresses.get(1).copied(),
        log,
    }
}

pub fn client() -> reqwest::Client {
    // reqwest's TLS stack wants a process-wide provider, even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}
