//! `wasikv kv`: an operator's commands on configured buckets, through the
//! bucket layer guests use (see `wasikv_host::admin`).
//!
//! Exit codes, for scripts: 0 done; 1 not found (`get` of a missing key,
//! `exists` of an absent one); 2 the command or the configuration is wrong
//! (usage, a bucket that is not configured); 3 the operation failed (a store
//! error, a malformed import, a checkpoint of another copy); 4 a copy or
//! import finished but some keys failed, or an import's input was truncated.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Args, Subcommand};
use wasikv_core::{Error, ErrorKind};
use wasikv_host::admin::{self, CopyEnd, CopyOptions, ImportEnd, Progress, Tally, WriteMode};
use wasikv_host::{Buckets, OpenBucket};

/// Done.
const OK: u8 = 0;
/// `get` of a missing key; `exists` of an absent one.
const NOT_FOUND: u8 = 1;
/// The command or the configuration is wrong.
const USAGE: u8 = 2;
/// The operation failed.
const FAILED: u8 = 3;
/// Finished, with failed keys (or a truncated import).
const PARTIAL: u8 = 4;

#[derive(Subcommand, Debug)]
pub enum KvCommand {
    /// Print a key's value: its bytes as they are, or with --json an object
    /// {"bucket","key","bytes","value" (base64),"utf8" (the text, or null)}.
    /// Exit code 1 when the key is missing.
    Get {
        bucket: String,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Write a key: VALUE, the bytes of --file, or standard input for `-`.
    Set {
        bucket: String,
        key: String,
        /// The value as text (may start with `-`); `-` alone reads
        /// standard input. A key starting with `-` goes after `--`.
        #[arg(
            required_unless_present = "file",
            conflicts_with = "file",
            allow_hyphen_values = true
        )]
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Delete keys (deleting an absent key is not an error).
    Delete {
        bucket: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Print whether a key exists (`true`/`false`); exit code 1 when it does not.
    Exists { bucket: String, key: String },
    /// Add DELTA (default 1, may be negative) to a counter, creating it at
    /// DELTA, and print its new value.
    Incr {
        bucket: String,
        key: String,
        #[arg(allow_negative_numbers = true)]
        delta: Option<i64>,
    },
    /// List keys, every page: one per line (keys holding a newline are
    /// ambiguous there: use --json), or with --json one JSON array.
    List {
        bucket: String,
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Stop after this many keys.
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Copy every key of bucket SRC into bucket DST (any two providers),
    /// with progress on standard error and a summary at the end. Not a
    /// snapshot: see docs/operations.md for what a copy guarantees while
    /// the source changes.
    Copy {
        /// The source bucket.
        src: String,
        /// The destination bucket.
        dst: String,
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        mode: ModeFlags,
        /// Record the position after every page in this file; run the same
        /// command again to go on after an interruption.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        #[command(flatten)]
        work: WorkFlags,
    },
    /// Write every key of BUCKET as JSON Lines (a header, {"key","value"
    /// (base64)} per key, an end line with the counts) to standard output
    /// or --output.
    Export {
        bucket: String,
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        work: WorkFlags,
    },
    /// Write the keys of an export (standard input or --input) to BUCKET.
    Import {
        bucket: String,
        /// Read this file instead of standard input.
        #[arg(long, short)]
        input: Option<PathBuf>,
        #[command(flatten)]
        mode: ModeFlags,
        #[command(flatten)]
        work: WorkFlags,
    },
}

/// What a copy or import does with keys the destination already has.
/// Without either flag: create absent keys, count keys holding the same
/// value as unchanged, and fail (without touching) keys holding another.
#[derive(Args, Debug)]
pub struct ModeFlags {
    /// Replace what the destination holds.
    #[arg(long, conflicts_with = "skip_existing")]
    overwrite: bool,
    /// Leave keys the destination already has as they are.
    #[arg(long)]
    skip_existing: bool,
}

impl ModeFlags {
    fn mode(&self) -> WriteMode {
        match (self.overwrite, self.skip_existing) {
            (true, _) => WriteMode::Overwrite,
            (_, true) => WriteMode::SkipExisting,
            _ => WriteMode::Create,
        }
    }
}

/// Flags of the long-running commands.
#[derive(Args, Debug)]
pub struct WorkFlags {
    /// Store calls in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// No progress display (the summary is still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Seconds between progress lines when standard error is not a terminal.
    #[arg(long, default_value_t = 10)]
    progress_every: u64,
}

/// Runs one `wasikv kv` command.
pub async fn run(buckets: Buckets, command: KvCommand) -> ExitCode {
    let code = match command {
        KvCommand::Get { bucket, key, json } => get(&buckets, &bucket, &key, json).await,
        KvCommand::Set {
            bucket,
            key,
            value,
            file,
        } => set(&buckets, &bucket, key, value, file).await,
        KvCommand::Delete { bucket, keys } => delete(&buckets, &bucket, keys).await,
        KvCommand::Exists { bucket, key } => exists(&buckets, &bucket, &key).await,
        KvCommand::Incr { bucket, key, delta } => {
            incr(&buckets, &bucket, &key, delta.unwrap_or(1)).await
        }
        KvCommand::List {
            bucket,
            prefix,
            limit,
            json,
        } => list(&buckets, &bucket, prefix.as_deref(), limit, json).await,
        KvCommand::Copy {
            src,
            dst,
            prefix,
            mode,
            checkpoint,
            work,
        } => {
            let options = CopyOptions {
                prefix,
                mode: mode.mode(),
                concurrency: work.concurrency,
                checkpoint,
                count_keys: !work.quiet,
            };
            copy(&buckets, &src, &dst, options, &work).await
        }
        KvCommand::Export {
            bucket,
            prefix,
            output,
            work,
        } => export(&buckets, &bucket, prefix.as_deref(), output, &work).await,
        KvCommand::Import {
            bucket,
            input,
            mode,
            work,
        } => import(&buckets, &bucket, input, mode.mode(), &work).await,
    };
    ExitCode::from(code.unwrap_or_else(|code| code))
}

/// Says what failed and gives its exit code.
fn failed(buckets: &Buckets, e: &Error) -> u8 {
    if e.kind() == ErrorKind::NoSuchStore {
        let names: Vec<&str> = buckets.names().collect();
        eprintln!("wasikv: {e} (configured: {})", names.join(", "));
        return USAGE;
    }
    eprintln!("wasikv: {e}");
    match e.kind() {
        ErrorKind::InvalidConfig => USAGE,
        _ => FAILED,
    }
}

async fn open(buckets: &Buckets, bucket: &str) -> Result<Arc<OpenBucket>, u8> {
    // The operator: every configured bucket, whatever the allow-lists say.
    buckets
        .open(None, bucket)
        .await
        .map_err(|e| failed(buckets, &e))
}

fn io_failed(what: &str, e: &std::io::Error) -> u8 {
    // A closed pipe (`| head`) is the reader's choice, not a failure to report.
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("wasikv: {what}: {e}");
    }
    FAILED
}

async fn get(buckets: &Buckets, name: &str, key: &str, json: bool) -> Result<u8, u8> {
    let bucket = open(buckets, name).await?;
    let Some(value) = bucket.get(key).await.map_err(|e| failed(buckets, &e))? else {
        eprintln!("wasikv: bucket {name:?} has no key {key:?}");
        return Ok(NOT_FOUND);
    };
    let mut out = std::io::stdout().lock();
    let written = if json {
        let line = serde_json::json!({
            "bucket": name,
            "key": key,
            "bytes": value.len(),
            "value": base64::engine::general_purpose::STANDARD.encode(&value),
            "utf8": std::str::from_utf8(&value).ok(),
        });
        writeln!(out, "{line}")
    } else {
        out.write_all(&value)
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| io_failed("cannot write the value", &e))?;
    Ok(OK)
}

async fn set(
    buckets: &Buckets,
    name: &str,
    key: String,
    value: Option<String>,
    file: Option<PathBuf>,
) -> Result<u8, u8> {
    let value = match (value, file) {
        (_, Some(path)) => std::fs::read(&path)
            .map_err(|e| io_failed(&format!("cannot read {}", path.display()), &e))?,
        (Some(v), None) if v == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|e| io_failed("cannot read standard input", &e))?;
            bytes
        }
        (Some(v), None) => v.into_bytes(),
        (None, None) => unreachable!("clap requires a value or --file"),
    };
    let bucket = open(buckets, name).await?;
    bucket
        .set(key, value)
        .await
        .map_err(|e| failed(buckets, &e))?;
    Ok(OK)
}

async fn delete(buckets: &Buckets, name: &str, mut keys: Vec<String>) -> Result<u8, u8> {
    let bucket = open(buckets, name).await?;
    let deleted = if keys.len() == 1 {
        let key = keys.pop().expect("one key");
        bucket.delete(&key).await
    } else {
        let mut result = Ok(());
        let batch = bucket.limits().max_batch_keys.max(1);
        for chunk in keys.chunks(batch) {
            result = bucket.delete_many(chunk.to_vec()).await;
            if result.is_err() {
                break;
            }
        }
        result
    };
    deleted.map_err(|e| failed(buckets, &e))?;
    Ok(OK)
}

async fn exists(buckets: &Buckets, name: &str, key: &str) -> Result<u8, u8> {
    let bucket = open(buckets, name).await?;
    let found = bucket.exists(key).await.map_err(|e| failed(buckets, &e))?;
    println!("{found}");
    Ok(if found { OK } else { NOT_FOUND })
}

async fn incr(buckets: &Buckets, name: &str, key: &str, delta: i64) -> Result<u8, u8> {
    let bucket = open(buckets, name).await?;
    let value = bucket
        .increment(key, delta)
        .await
        .map_err(|e| failed(buckets, &e))?;
    println!("{value}");
    Ok(OK)
}

async fn list(
    buckets: &Buckets,
    name: &str,
    prefix: Option<&str>,
    limit: Option<u64>,
    json: bool,
) -> Result<u8, u8> {
    let bucket = open(buckets, name).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write_err = |e: std::io::Error| io_failed("cannot write the keys", &e);
    let limit = limit.unwrap_or(u64::MAX);
    let mut listed = 0u64;
    let mut cursor: Option<String> = None;
    if json {
        out.write_all(b"[").map_err(write_err)?;
    }
    'pages: loop {
        let (keys, next) = bucket
            .list_keys(cursor.as_deref())
            .await
            .map_err(|e| failed(buckets, &e))?;
        for key in keys {
            if listed >= limit {
                break 'pages;
            }
            if !key.starts_with(prefix.unwrap_or("")) {
                continue;
            }
            if json {
                let sep = if listed == 0 { "" } else { "," };
                let key = serde_json::to_string(&key).expect("a string serializes");
                write!(out, "{sep}{key}").map_err(write_err)?;
            } else {
                writeln!(out, "{key}").map_err(write_err)?;
            }
            listed += 1;
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if json {
        out.write_all(b"]\n").map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    Ok(OK)
}

async fn copy(
    buckets: &Buckets,
    src: &str,
    dst: &str,
    options: CopyOptions,
    work: &WorkFlags,
) -> Result<u8, u8> {
    let source = open(buckets, src).await?;
    let destination = open(buckets, dst).await?;
    let what = format!("copy {src} -> {dst}");
    let progress = Arc::new(Progress::default());
    let mut display = Display::start(&what, progress.clone(), work);
    let end = admin::copy(&source, &destination, &options, &progress).await;
    display.stop();
    if let Ok(CopyEnd::AlreadyDone) = end {
        eprintln!(
            "wasikv: {what}: the checkpoint records a finished copy; nothing to do (delete it to copy again)"
        );
    }
    finish(buckets, &what, &progress, display.started, end.map(|_| ()))
}

async fn export(
    buckets: &Buckets,
    name: &str,
    prefix: Option<&str>,
    output: Option<PathBuf>,
    work: &WorkFlags,
) -> Result<u8, u8> {
    let bucket = open(buckets, name).await?;
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| io_failed(&format!("cannot create {}", path.display()), &e))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let what = format!("export {name}");
    let progress = Arc::new(Progress::default());
    let mut display = Display::start(&what, progress.clone(), work);
    let end = admin::export(&bucket, prefix, &mut out, work.concurrency, &progress).await;
    display.stop();
    finish(buckets, &what, &progress, display.started, end.map(|_| ()))
}

async fn import(
    buckets: &Buckets,
    name: &str,
    input: Option<PathBuf>,
    mode: WriteMode,
    work: &WorkFlags,
) -> Result<u8, u8> {
    let bucket = open(buckets, name).await?;
    let mut reader: Box<dyn BufRead> = match &input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| io_failed(&format!("cannot open {}", path.display()), &e))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let what = format!("import {name}");
    let progress = Arc::new(Progress::default());
    let mut display = Display::start(&what, progress.clone(), work);
    let end = admin::import(&bucket, &mut reader, mode, work.concurrency, &progress).await;
    display.stop();
    if let Ok(ImportEnd::Truncated { lines }) = end {
        eprintln!(
            "wasikv: {what}: the input ends after {lines} lines without the export's end line: it is truncated (the keys it has were imported)"
        );
        finish(buckets, &what, &progress, display.started, Ok(()))?;
        return Err(PARTIAL);
    }
    finish(buckets, &what, &progress, display.started, end.map(|_| ()))
}

/// Prints the summary and the failed keys; the exit code.
fn finish(
    buckets: &Buckets,
    what: &str,
    progress: &Progress,
    started: Instant,
    end: wasikv_core::Result<()>,
) -> Result<u8, u8> {
    let t = progress.tally();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wasikv: {what}: {} keys: {} written, {} unchanged, {} skipped, {} vanished, {} failed; {} in {secs:.1} s",
        t.keys(),
        t.written,
        t.unchanged,
        t.skipped,
        t.vanished,
        t.failed,
        indicatif::HumanBytes(t.bytes),
    );
    let failures = progress.take_failures();
    for f in &failures {
        eprintln!("wasikv: {what}: failed: key {:?}: {}", f.key, f.error);
    }
    if t.failed > failures.len() as u64 {
        eprintln!(
            "wasikv: {what}: ... and {} more failed keys",
            t.failed - failures.len() as u64
        );
    }
    if let Err(e) = end {
        return Err(failed(buckets, &e));
    }
    Ok(if t.failed > 0 { PARTIAL } else { OK })
}

/// Progress on standard error while work runs: a bar on a terminal
/// (keys, bytes, rates, ETA once the total is known), plain lines every
/// `--progress-every` seconds otherwise, nothing with `--quiet`.
struct Display {
    started: Instant,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Display {
    fn start(what: &str, progress: Arc<Progress>, work: &WorkFlags) -> Self {
        let started = Instant::now();
        if work.quiet {
            return Display {
                started,
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let what = what.to_string();
        let every = Duration::from_secs(work.progress_every.max(1));
        let terminal = std::io::stderr().is_terminal();
        let thread = std::thread::spawn(move || {
            if terminal {
                bar(&what, &progress, started, &stopped);
            } else {
                lines(&what, &progress, started, every, &stopped);
            }
        });
        Display {
            started,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Ends the display (the bar is cleared before this returns).
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The rest of a progress report after the key count: bytes so far,
/// keys/s and bytes/s, the time left in `eta`'s words once the total is
/// known, and the failed keys if any.
fn throughput(
    t: &Tally,
    total: Option<u64>,
    elapsed: Duration,
    eta: fn(indicatif::HumanDuration) -> String,
) -> String {
    use indicatif::{HumanBytes, HumanDuration};
    let secs = elapsed.as_secs_f64().max(1e-3);
    let keys_per_sec = t.keys() as f64 / secs;
    let left = total.filter(|_| keys_per_sec > 0.0).map(|total| {
        let left = total.saturating_sub(t.keys()) as f64 / keys_per_sec;
        format!(", {}", eta(HumanDuration(Duration::from_secs_f64(left))))
    });
    let failed = (t.failed > 0).then(|| format!(", {} failed", t.failed));
    format!(
        "{}, {keys_per_sec:.0} keys/s, {}/s{}{}",
        HumanBytes(t.bytes),
        HumanBytes((t.bytes as f64 / secs) as u64),
        left.unwrap_or_default(),
        failed.unwrap_or_default()
    )
}

fn bar(what: &str, progress: &Progress, started: Instant, stopped: &std::sync::mpsc::Receiver<()>) {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let counting = ProgressStyle::with_template("{spinner} {prefix}: {pos} keys {wide_msg}")
        .expect("a valid template");
    let known = ProgressStyle::with_template("{prefix}: [{bar:25}] {pos}/{len} keys {wide_msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(counting);
    bar.set_prefix(what.to_string());
    let mut styled = false;
    loop {
        let t = progress.tally();
        let total = progress.total_keys();
        if let (Some(total), false) = (total, styled) {
            bar.set_style(known.clone());
            bar.set_length(total);
            styled = true;
        }
        bar.set_position(t.keys());
        bar.set_message(throughput(&t, total, started.elapsed(), |d| {
            format!("ETA {d}")
        }));
        if stopped.recv_timeout(Duration::from_millis(200)).is_ok() {
            bar.finish_and_clear();
            return;
        }
    }
}

fn lines(
    what: &str,
    progress: &Progress,
    started: Instant,
    every: Duration,
    stopped: &std::sync::mpsc::Receiver<()>,
) {
    while stopped.recv_timeout(every).is_err() {
        let t = progress.tally();
        let total = progress.total_keys();
        let done = match total {
            Some(total) if total > 0 => format!(
                "{} of {total} keys ({:.0}%)",
                t.keys(),
                100.0 * t.keys() as f64 / total as f64
            ),
            _ => format!("{} keys", t.keys()),
        };
        let rest = throughput(&t, total, started.elapsed(), |d| format!("about {d} left"));
        eprintln!("wasikv: {what}: {done}, {rest}");
    }
}
