//! Load on a fleet of `wasikv serve` processes running the `http-kv`
//! example over one store: loops that increment a shared counter and append
//! unique tokens to a shared list by CAS, each recording what it was told,
//! and the checks a careful user makes afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::served::{Served, client, serve};

/// Starts `hosts` `wasikv serve` processes of the http-kv example on
/// `bucket` (configured by `config`), each in its own directory under
/// `dir`.
pub fn start_hosts(dir: &std::path::Path, hosts: usize, config: &str, bucket: &str) -> Vec<Served> {
    (0..hosts)
        .map(|h| {
            let dir = dir.join(format!("host{h}"));
            std::fs::create_dir_all(&dir).unwrap();
            serve(
                &dir,
                config,
                wasikv_artifacts::HTTP_KV,
                &["--env", &format!("BUCKET={bucket}")],
            )
        })
        .collect()
}

/// What to run on each host.
#[derive(Debug, Clone)]
pub struct Load {
    /// Counter name (`GET /counter/NAME`, key `counter:NAME`).
    pub counter: String,
    /// Each loop increments its own counter (`NAME-h<host>l<loop>`) instead
    /// of the shared one: writes spread over keys (and a cluster's shards).
    pub counter_per_loop: bool,
    /// Key of the shared token list (`POST /append/KEY`).
    pub list: String,
    /// Concurrent loops per host (each request is a fresh guest instance).
    pub loops_per_host: usize,
    /// Increments per loop; 0: until stopped.
    pub steps: usize,
    /// Every this many increments, a loop appends one token.
    pub append_every: usize,
}

/// What the loops were told.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Increments answered 200.
    pub increments_ok: u64,
    /// Increments that failed: each may or may not have applied.
    pub increments_failed: u64,
    /// Tokens whose append was confirmed (`appended`, or `present` after a
    /// failed attempt that had applied).
    pub appended: Vec<String>,
    /// Append attempts that failed (retried until confirmed).
    pub appends_failed: u64,
    /// Failed calls whose error was not `unavailable` (must stay empty).
    pub unexpected: Vec<String>,
    /// A few failure texts, for the report.
    pub samples: Vec<String>,
    /// The longest a failing call took to fail.
    pub slowest_failure: Duration,
    /// The longest a loop went from its first failure to its next success.
    pub longest_outage: Duration,
    /// Wall time of the load.
    pub elapsed: Duration,
    /// Per counter name: increments acknowledged and failed.
    pub per_counter: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.increments_ok += other.increments_ok;
        self.increments_failed += other.increments_failed;
        self.appended.extend(other.appended);
        self.appends_failed += other.appends_failed;
        self.unexpected.extend(other.unexpected);
        if self.samples.len() < 5 {
            self.samples.extend(other.samples.into_iter().take(5));
        }
        self.slowest_failure = self.slowest_failure.max(other.slowest_failure);
        self.longest_outage = self.longest_outage.max(other.longest_outage);
        for (name, (ok, failed)) in other.per_counter {
            let entry = self.per_counter.entry(name).or_default();
            entry.0 += ok;
            entry.1 += failed;
        }
    }

    /// Increments per second answered 200.
    pub fn increments_per_second(&self) -> f64 {
        self.increments_ok as f64 / self.elapsed.as_secs_f64()
    }

    fn failed(&mut self, started: Instant, outage: &mut Option<Instant>, text: String) {
        self.slowest_failure = self.slowest_failure.max(started.elapsed());
        outage.get_or_insert(started);
        if !text.contains("unavailable") {
            self.unexpected.push(text.clone());
        }
        if self.samples.len() < 5 {
            self.samples.push(text);
        }
    }

    fn succeeded(&mut self, outage: &mut Option<Instant>) {
        if let Some(since) = outage.take() {
            self.longest_outage = self.longest_outage.max(since.elapsed());
        }
    }
}

/// Longest an append may keep failing before the load gives up.
const APPEND_CEILING: Duration = Duration::from_secs(90);

/// One request: status and body, or the transport error as text.
async fn call(request: reqwest::RequestBuilder) -> Result<(u16, String), String> {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|e| e.to_string())?;
            Ok((status, body))
        }
        Err(e) => Err(format!("transport: {e}")),
    }
}

/// One loop on `host`, until `steps` or `stop`.
async fn run_loop(host_url: String, name: String, load: Load, stop: Arc<AtomicBool>) -> Tally {
    let client = client();
    let mut tally = Tally::default();
    let mut outage = None;
    let mut step = 0usize;
    let counter = if load.counter_per_loop {
        format!("{}-{name}", load.counter)
    } else {
        load.counter.clone()
    };
    let (mut ok, mut failed) = (0, 0);
    while if load.steps > 0 {
        step < load.steps
    } else {
        !stop.load(Ordering::Relaxed)
    } {
        let started = Instant::now();
        let url = format!("{host_url}/counter/{counter}");
        match call(client.get(url)).await {
            Ok((200, _)) => {
                ok += 1;
                tally.succeeded(&mut outage);
            }
            Ok((status, body)) => {
                failed += 1;
                tally.failed(started, &mut outage, format!("{status} {}", body.trim()));
            }
            Err(text) => {
                failed += 1;
                tally.failed(started, &mut outage, text);
            }
        }
        step += 1;
        if load.append_every > 0 && step.is_multiple_of(load.append_every) {
            let token = format!("{name}-s{step}");
            let first = Instant::now();
            loop {
                let started = Instant::now();
                let url = format!("{host_url}/append/{}", load.list);
                match call(client.post(url).body(token.clone())).await {
                    Ok((200, _)) => {
                        tally.appended.push(token);
                        tally.succeeded(&mut outage);
                        break;
                    }
                    Ok((status, body)) => {
                        tally.appends_failed += 1;
                        tally.failed(started, &mut outage, format!("{status} {}", body.trim()));
                    }
                    Err(text) => {
                        tally.appends_failed += 1;
                        tally.failed(started, &mut outage, text);
                    }
                }
                assert!(
                    first.elapsed() < APPEND_CEILING,
                    "append of {token} not confirmed within {APPEND_CEILING:?}: {:?}",
                    tally.samples
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tally.increments_ok = ok;
    tally.increments_failed = failed;
    tally.per_counter.insert(counter, (ok, failed));
    tally
}

/// Runs `load` on every host at once until each loop did its steps, or
/// until `stop` is set (when `load.steps` is 0).
pub async fn drive(hosts: &[&Served], load: &Load, stop: Arc<AtomicBool>) -> Tally {
    let started = Instant::now();
    let mut loops = Vec::new();
    for (h, host) in hosts.iter().enumerate() {
        for l in 0..load.loops_per_host {
            loops.push(tokio::spawn(run_loop(
                host.url(""),
                format!("h{h}l{l}"),
                load.clone(),
                stop.clone(),
            )));
        }
    }
    let mut tally = Tally::default();
    for done in futures::future::join_all(loops).await {
        tally.merge(done.expect("a load loop panicked"));
    }
    tally.elapsed = started.elapsed();
    tally
}

/// Reads `path` from `host` until it answers 200 (the store may still be
/// recovering), within a minute.
async fn read(host: &Served, path: &str) -> String {
    let client = client();
    let started = Instant::now();
    loop {
        match call(client.get(host.url(path))).await {
            Ok((200, body)) => return body,
            other => assert!(
                started.elapsed() < Duration::from_secs(60),
                "GET {path}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The checks after a load, through `host`: no acknowledged increment
/// lost and none counted that no call made (`ok <= counter <= ok +
/// failed`); every confirmed token in the list exactly once, no token
/// twice, nothing that no loop appended; every failure `unavailable`.
/// Counters are checked one by one. Returns their sum.
pub async fn verify(host: &Served, load: &Load, tally: &Tally) -> u64 {
    assert!(
        tally.unexpected.is_empty(),
        "failures other than unavailable: {:?}",
        &tally.unexpected[..tally.unexpected.len().min(5)]
    );
    let mut total = 0;
    for (name, &(ok, failed)) in &tally.per_counter {
        if ok + failed == 0 {
            continue;
        }
        let text = read(host, &format!("/kv/counter:{name}")).await;
        let counter: u64 = text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("counter {text:?}"));
        assert!(
            counter >= ok,
            "acknowledged increments lost: counter {name} is {counter} < {ok} acknowledged"
        );
        assert!(
            counter <= ok + failed,
            "counter {name} is {counter} > {ok} acknowledged + {failed} failed"
        );
        total += counter;
    }
    let counter = total;
    if tally.appended.is_empty() {
        return counter;
    }
    let list = read(host, &format!("/kv/{}", load.list)).await;
    let mut seen = std::collections::HashMap::new();
    for token in list.split(',') {
        *seen.entry(token).or_insert(0) += 1;
    }
    for (token, n) in &seen {
        assert_eq!(*n, 1, "token {token} appended {n} times");
        assert!(
            token.starts_with('h'),
            "a token no loop appended: {token:?}"
        );
    }
    for token in &tally.appended {
        assert!(
            seen.contains_key(token.as_str()),
            "confirmed append {token} lost"
        );
    }
    assert_eq!(
        seen.len(),
        tally.appended.len(),
        "tokens in the list vs confirmed"
    );
    counter
}
