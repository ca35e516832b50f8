//! Operator work on configured buckets, behind `wasikv kv`: copying every
//! key of one bucket into another (on any provider), and exporting a bucket
//! to a line format that [`import`] reads back.
//!
//! Everything goes through [`OpenBucket`], the layer guests use: the same
//! key codec, counter encoding, emulation, large-value chunking and limits,
//! so a copy between two providers gives guests on the destination exactly
//! what guests on the source saw (a counter stays a counter).
//!
//! # What a copy or an export guarantees
//! Neither is a snapshot. Every key that exists in the source for the whole
//! run, unchanged, arrives with its value. A key written during the run
//! arrives with its old or its new value; a key created during the run may
//! or may not arrive; a key deleted during the run may still arrive (if it
//! was read before the delete) or is counted as `vanished`. Stop writers (or
//! copy again with `--overwrite`) for an exact copy.
//!
//! # The export format (JSON Lines)
//! ```text
//! {"format":"wasikv-export","version":1,"bucket":"default","provider":"embedded","prefix":null}
//! {"key":"user:1","value":"aGVsbG8="}
//! {"end":true,"keys":1,"bytes":5}
//! ```
//! One JSON object per line: a header, one line per key (`value` is the
//! value's bytes in standard base64, with padding), and an end line with the
//! number of keys and value bytes, so that a truncated file is detected.
//! Key lines are in the source's listing order.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::stream::{self, FuturesUnordered, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use wasikv_core::{Error, ErrorKind, Result, WriteOutcome};

use crate::buckets::OpenBucket;

/// The `format` of an export's header line.
pub const EXPORT_FORMAT: &str = "wasikv-export";
/// The export format version this host writes and reads.
pub const EXPORT_VERSION: u32 = 1;
/// Keys per batch call (`get-many`, `set-many`) of a copy or an import.
const CHUNK_KEYS: usize = 100;
/// Value bytes an import gathers into one batch before writing it.
const CHUNK_BYTES: usize = 4 << 20;
/// Key failures kept for the summary (all of them are counted).
const FAILURES_KEPT: usize = 100;

/// What to do with a key the destination already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// Create absent keys; a key already holding the same value counts as
    /// unchanged, one holding another value is a failed key (never
    /// overwritten). Safe to repeat: a rerun finishes an interrupted run.
    #[default]
    Create,
    /// Write every key, replacing what the destination holds.
    Overwrite,
    /// Create absent keys; leave every existing key as it is.
    SkipExisting,
}

/// Counts of a copy or import, by what happened to each key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Keys written to the destination.
    pub written: u64,
    /// Keys the destination already held with the same value (create mode).
    pub unchanged: u64,
    /// Existing keys left alone (`skip-existing`).
    pub skipped: u64,
    /// Keys listed by the source but deleted before they were read.
    pub vanished: u64,
    /// Keys that could not be written (see [`Progress::take_failures`]).
    pub failed: u64,
    /// Value bytes written.
    pub bytes: u64,
}

impl Tally {
    /// Every key dealt with, whatever happened to it.
    pub fn keys(&self) -> u64 {
        self.written + self.unchanged + self.skipped + self.vanished + self.failed
    }
}

/// A key that could not be written, and why.
#[derive(Debug)]
pub struct KeyFailure {
    /// The key.
    pub key: String,
    /// The destination's error.
    pub error: Error,
}

/// Live counts of a copy, export or import, shared with whoever shows
/// progress (read them from another thread at any time).
#[derive(Debug, Default)]
pub struct Progress {
    written: AtomicU64,
    unchanged: AtomicU64,
    skipped: AtomicU64,
    vanished: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    /// Keys to do in all, plus one; 0 while unknown.
    total_plus_one: AtomicU64,
    finished: AtomicBool,
    failures: Mutex<Vec<KeyFailure>>,
}

impl Progress {
    /// The counts so far.
    pub fn tally(&self) -> Tally {
        Tally {
            written: self.written.load(Ordering::Relaxed),
            unchanged: self.unchanged.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            vanished: self.vanished.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Keys to do in all (resumed ones included), once known: a copy counts
    /// the source's keys alongside the copy itself.
    pub fn total_keys(&self) -> Option<u64> {
        self.total_plus_one.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Whether the work has ended (done or failed).
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    /// The first failed keys (up to 100; [`Tally::failed`] counts them all).
    pub fn take_failures(&self) -> Vec<KeyFailure> {
        std::mem::take(&mut *self.failures.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn start_from(&self, t: Tally) {
        self.written.store(t.written, Ordering::Relaxed);
        self.unchanged.store(t.unchanged, Ordering::Relaxed);
        self.skipped.store(t.skipped, Ordering::Relaxed);
        self.vanished.store(t.vanished, Ordering::Relaxed);
        self.failed.store(t.failed, Ordering::Relaxed);
        self.bytes.store(t.bytes, Ordering::Relaxed);
    }

    fn set_total(&self, keys: u64) {
        self.total_plus_one
            .store(keys.saturating_add(1), Ordering::Relaxed);
    }

    fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    fn count(&self, outcome: Outcome, bytes: usize) {
        let counter = match outcome {
            Outcome::Written => {
                self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                &self.written
            }
            Outcome::Unchanged => &self.unchanged,
            Outcome::Skipped => &self.skipped,
            Outcome::Vanished => &self.vanished,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, key: String, error: Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < FAILURES_KEPT {
            kept.push(KeyFailure { key, error });
        }
    }
}

/// What happened to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Written,
    Unchanged,
    Skipped,
    Vanished,
}

/// Whether `e` concerns one key only (the run goes on, the key counts as
/// failed) rather than the store (the run stops, a rerun can finish it).
fn is_key_error(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::TooLarge | ErrorKind::InvalidKey | ErrorKind::InvalidValue | ErrorKind::Conflict
    )
}

/// Options of [`copy`].
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Only keys starting with this (the whole source is listed and
    /// filtered: stores list by namespace, not by key prefix).
    pub prefix: Option<String>,
    /// What to do with keys the destination already has.
    pub mode: WriteMode,
    /// Store calls in flight at once (at least 1).
    pub concurrency: usize,
    /// A file recording the listing position after every page: an
    /// interrupted copy run again with the same file goes on from there.
    pub checkpoint: Option<PathBuf>,
    /// Count the source's keys alongside the copy, for
    /// [`Progress::total_keys`] (one more listing of the source).
    pub count_keys: bool,
}

/// How a copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyEnd {
    /// Every page was copied in this run (or in it and earlier runs).
    Done,
    /// The checkpoint file records a finished copy: nothing was done.
    AlreadyDone,
}

/// Copies every key of `src` (under `options.prefix`) into `dst`. Batches
/// (`get-many`, and `set-many` when overwriting) are native where the
/// stores have them; at most `options.concurrency` calls are in flight.
/// Keys the destination refuses (too large, invalid) are counted as failed
/// and the copy goes on; any other error stops it, and with a checkpoint a
/// rerun goes on from the last finished page.
pub async fn copy(
    src: &OpenBucket,
    dst: &OpenBucket,
    options: &CopyOptions,
    progress: &Progress,
) -> Result<CopyEnd> {
    let _finished = Finished(progress);
    if src.name() == dst.name() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("cannot copy bucket {:?} onto itself", src.name()),
        ));
    }
    let mut checkpoint = match &options.checkpoint {
        Some(path) => Some(Checkpoint::load_or_start(path, src, dst, options)?),
        None => None,
    };
    let mut token = None;
    if let Some(c) = &checkpoint {
        progress.start_from(c.state.tally);
        if c.state.finished {
            return Ok(CopyEnd::AlreadyDone);
        }
        token = c.next_token()?;
    }
    let width = options.concurrency.max(1);
    let gate = Semaphore::new(width);
    let prefix = options.prefix.as_deref().unwrap_or("");
    let copy = async {
        let mut listing = Listing::new(src, prefix, token);
        let mut page = listing.page().await?;
        while let Some(keys) = page {
            let after = listing.position().map(<[u8]>::to_vec);
            // The next page is listed while this one is copied.
            let (copied, following) = tokio::join!(
                copy_keys(src, dst, keys, options.mode, &gate, width, progress),
                listing.page()
            );
            copied?;
            if let Some(c) = &mut checkpoint {
                c.save(after.as_deref(), progress.tally(), after.is_none())?;
            }
            page = following?;
        }
        Ok(CopyEnd::Done)
    };
    let count = async {
        if options.count_keys {
            count_keys(src, prefix, progress).await;
        }
    };
    let (end, ()) = tokio::join!(
        async {
            let end = copy.await;
            // Stops the count (it only serves the progress display).
            progress.finish();
            end
        },
        count
    );
    end
}

/// Lists the source once more to count its keys, for the progress display
/// (any error just leaves the total unknown).
async fn count_keys(src: &OpenBucket, prefix: &str, progress: &Progress) {
    let mut listing = Listing::new(src, prefix, None);
    let mut keys = 0u64;
    while !progress.is_finished() {
        match listing.page().await {
            Ok(Some(page)) => keys += page.len() as u64,
            Ok(None) => return progress.set_total(keys),
            Err(_) => return,
        }
    }
}

/// A bucket's keys under a prefix, a page at a time, from a position given
/// by the provider's own token (see [`OpenBucket::list_page`]).
struct Listing<'a> {
    bucket: &'a OpenBucket,
    prefix: &'a str,
    /// The token of the next page; `None` with `ended` set at the end.
    next: Option<Vec<u8>>,
    ended: bool,
}

impl<'a> Listing<'a> {
    fn new(bucket: &'a OpenBucket, prefix: &'a str, from: Option<Vec<u8>>) -> Self {
        Listing {
            bucket,
            prefix,
            next: from,
            ended: false,
        }
    }

    /// The next page's keys under the prefix; `None` once the listing ended.
    async fn page(&mut self) -> Result<Option<Vec<String>>> {
        if self.ended {
            return Ok(None);
        }
        let limit = self.bucket.limits().list_page_keys;
        let page = self.bucket.list_page(self.next.as_deref(), limit).await?;
        self.ended = page.next.is_none();
        self.next = page.next;
        let prefix = self.prefix;
        Ok(Some(
            page.keys
                .into_iter()
                .filter(|k| k.starts_with(prefix))
                .collect(),
        ))
    }

    /// Where a listing resumes after the pages returned so far; `None` when
    /// they were the last.
    fn position(&self) -> Option<&[u8]> {
        self.next.as_deref()
    }
}

/// Marks a [`Progress`] finished when dropped: when the work ends, however.
struct Finished<'a>(&'a Progress);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Keys per batch call on `bucket`: [`CHUNK_KEYS`], within the host's
/// `limits.max_batch_keys`.
fn batch_keys(bucket: &OpenBucket) -> usize {
    CHUNK_KEYS.min(bucket.limits().max_batch_keys).max(1)
}

/// Reads `keys` from `src` and writes them to `dst`, chunk by chunk.
async fn copy_keys(
    src: &OpenBucket,
    dst: &OpenBucket,
    keys: Vec<String>,
    mode: WriteMode,
    gate: &Semaphore,
    width: usize,
    progress: &Progress,
) -> Result<()> {
    let chunks: Vec<Vec<String>> = keys
        .chunks(batch_keys(src))
        .map(<[String]>::to_vec)
        .collect();
    stream::iter(chunks)
        .map(|keys| async move {
            let entries = read_chunk(src, keys, gate, progress).await?;
            write_chunk(dst, entries, mode, gate, progress).await
        })
        .buffer_unordered(width)
        .try_collect::<()>()
        .await
}

/// The values of `keys`, in one `get-many` where the result fits a call;
/// keys deleted since they were listed are counted as vanished and left out.
async fn read_chunk(
    src: &OpenBucket,
    keys: Vec<String>,
    gate: &Semaphore,
    progress: &Progress,
) -> Result<Vec<(String, Vec<u8>)>> {
    let many = {
        let _permit = gate.acquire().await.expect("never closed");
        src.get_many(keys.clone()).await
    };
    let values: Vec<(String, Option<Vec<u8>>)> = match many {
        Ok(values) => keys
            .into_iter()
            .zip(values)
            .map(|(key, found)| (key, found.map(|(_, v)| v)))
            .collect(),
        // Large values: one call each.
        Err(e) if e.kind() == ErrorKind::TooLarge => {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                let _permit = gate.acquire().await.expect("never closed");
                let value = src.get(&key).await?;
                values.push((key, value));
            }
            values
        }
        Err(e) => return Err(e),
    };
    let mut found = Vec::with_capacity(values.len());
    for (key, value) in values {
        match value {
            Some(v) => found.push((key, v)),
            None => progress.count(Outcome::Vanished, 0),
        }
    }
    Ok(found)
}

/// Writes `entries` to `dst` as `mode` says, counting each key.
async fn write_chunk(
    dst: &OpenBucket,
    entries: Vec<(String, Vec<u8>)>,
    mode: WriteMode,
    gate: &Semaphore,
    progress: &Progress,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if mode == WriteMode::Overwrite {
        let sizes: Vec<usize> = entries.iter().map(|(_, v)| v.len()).collect();
        let batch = {
            let _permit = gate.acquire().await.expect("never closed");
            dst.set_many(entries.clone()).await
        };
        match batch {
            Ok(()) => {
                for len in sizes {
                    progress.count(Outcome::Written, len);
                }
                return Ok(());
            }
            // One key spoilt the batch: write them one by one to find it.
            Err(e) if is_key_error(&e) => {}
            Err(e) => return Err(e),
        }
    }
    entries
        .into_iter()
        .map(|(key, value)| async move {
            let len = value.len();
            let _permit = gate.acquire().await.expect("never closed");
            match write_one(dst, &key, value, mode).await {
                Ok(outcome) => {
                    progress.count(outcome, len);
                    Ok(())
                }
                Err(e) if is_key_error(&e) => {
                    progress.fail(key, e);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
        .collect::<FuturesUnordered<_>>()
        .try_collect::<()>()
        .await
}

/// Writes one key as `mode` says.
async fn write_one(
    dst: &OpenBucket,
    key: &str,
    value: Vec<u8>,
    mode: WriteMode,
) -> Result<Outcome> {
    match mode {
        WriteMode::Overwrite => {
            dst.set(key, value).await?;
            return Ok(Outcome::Written);
        }
        WriteMode::SkipExisting => {
            return Ok(match dst.swap(key, None, value).await? {
                WriteOutcome::Written => Outcome::Written,
                WriteOutcome::ConditionFailed => Outcome::Skipped,
            });
        }
        WriteMode::Create => {}
    }
    // Create-if-absent; a key deleted between a failed create and the read
    // that compares it is created again (a few times, then it is a conflict).
    for _ in 0..3 {
        if dst.swap(key, None, value.clone()).await? == WriteOutcome::Written {
            return Ok(Outcome::Written);
        }
        match dst.get(key).await? {
            Some(theirs) if theirs == value => return Ok(Outcome::Unchanged),
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "the destination holds another value under this key (left as it is; --overwrite replaces it, --skip-existing leaves such keys without counting them as failed)",
                ));
            }
            None => continue,
        }
    }
    Err(Error::new(
        ErrorKind::Conflict,
        "the key was created and deleted again in the destination while it was being copied",
    ))
}

/// The header line of an export.
#[derive(Debug, Serialize, Deserialize)]
struct ExportHeader {
    format: String,
    version: u32,
    bucket: String,
    provider: String,
    prefix: Option<String>,
}

/// A key line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportEntry {
    key: String,
    value: String,
}

/// The end line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportEnd {
    end: bool,
    keys: u64,
    bytes: u64,
}

/// Writes every key of `src` under `prefix` to `out` in the export format
/// (module docs), values read `concurrency` batches ahead; progress counts
/// exported keys as written. Returns the number of keys and value bytes.
pub async fn export(
    src: &OpenBucket,
    prefix: Option<&str>,
    out: &mut dyn Write,
    concurrency: usize,
    progress: &Progress,
) -> Result<Tally> {
    let _finished = Finished(progress);
    let io =
        |e: std::io::Error| Error::new(ErrorKind::Other, format!("cannot write the export: {e}"));
    let header = ExportHeader {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        bucket: src.name().into(),
        provider: src.provider().into(),
        prefix: prefix.map(str::to_string),
    };
    write_json_line(out, &header).map_err(io)?;
    let gate = Semaphore::new(concurrency.max(1));
    let mut listing = Listing::new(src, prefix.unwrap_or(""), None);
    while let Some(keys) = listing.page().await? {
        let chunks: Vec<Vec<String>> = keys
            .chunks(batch_keys(src))
            .map(<[String]>::to_vec)
            .collect();
        // In listing order: `buffered`, not `buffer_unordered`.
        let mut read = stream::iter(chunks)
            .map(|keys| read_chunk(src, keys, &gate, progress))
            .buffered(concurrency.max(1));
        while let Some(entries) = read.next().await {
            for (key, value) in entries? {
                let line = ExportEntry {
                    key,
                    value: BASE64.encode(&value),
                };
                write_json_line(out, &line).map_err(io)?;
                progress.count(Outcome::Written, value.len());
            }
        }
    }
    let tally = progress.tally();
    let end = ExportEnd {
        end: true,
        keys: tally.written,
        bytes: tally.bytes,
    };
    write_json_line(out, &end).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(tally)
}

fn write_json_line<T: Serialize>(out: &mut dyn Write, line: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

/// How an import ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportEnd {
    /// The whole export was read, its end line's counts matched.
    Complete,
    /// The input ended without the end line (a cut-off file): the keys it
    /// had were written.
    Truncated {
        /// Lines read.
        lines: u64,
    },
}

/// Reads an export (module docs) from `input` and writes its keys to
/// `dst` as `mode` says, in batches, `concurrency` calls at once. Keys the
/// destination refuses are counted as failed; a malformed line is an
/// `invalid-value` error naming it, after the keys before it were written.
pub async fn import(
    dst: &OpenBucket,
    input: &mut dyn BufRead,
    mode: WriteMode,
    concurrency: usize,
    progress: &Progress,
) -> Result<ImportEnd> {
    let _finished = Finished(progress);
    let concurrency = concurrency.max(1);
    let gate = Semaphore::new(concurrency);
    let max_keys = batch_keys(dst);
    let mut reader = ExportReader::new(input);
    reader.header()?;
    let mut writing = FuturesUnordered::new();
    let mut entries = 0u64;
    let mut end = None;
    let mut truncated = false;
    loop {
        // A batch from the file; the batches in flight make progress while
        // this awaits the oldest of them.
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < max_keys && bytes < CHUNK_BYTES {
            match reader.next()? {
                Some(Line::Entry(key, value)) => {
                    bytes += value.len();
                    chunk.push((key, value));
                }
                Some(Line::End(e)) => {
                    end = Some(e);
                    break;
                }
                None => {
                    truncated = true;
                    break;
                }
            }
        }
        let last = end.is_some() || truncated;
        entries += chunk.len() as u64;
        writing.push(write_chunk(dst, chunk, mode, &gate, progress));
        while writing.len() >= concurrency || (last && !writing.is_empty()) {
            writing.next().await.expect("not empty")?;
        }
        if truncated {
            return Ok(ImportEnd::Truncated {
                lines: reader.number - 1,
            });
        }
        if let Some(end) = &end {
            if end.keys != entries {
                return Err(reader.invalid(format!(
                    "the end line counts {} keys, the file has {entries}",
                    end.keys
                )));
            }
            reader.nothing_after_end()?;
            return Ok(ImportEnd::Complete);
        }
    }
}

/// A line of an export after the header.
enum Line {
    Entry(String, Vec<u8>),
    End(ExportEnd),
}

/// Reads an export line by line, with the line number for errors.
struct ExportReader<'a> {
    input: &'a mut dyn BufRead,
    line: String,
    number: u64,
}

impl<'a> ExportReader<'a> {
    fn new(input: &'a mut dyn BufRead) -> Self {
        ExportReader {
            input,
            line: String::new(),
            number: 0,
        }
    }

    fn invalid(&self, why: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::InvalidValue,
            format!("export line {}: {why}", self.number),
        )
    }

    /// The next line, `false` at the end of the input.
    fn read(&mut self) -> Result<bool> {
        self.line.clear();
        self.number += 1;
        let n = self
            .input
            .read_line(&mut self.line)
            .map_err(|e| self.invalid(format!("cannot read: {e}")))?;
        Ok(n > 0)
    }

    fn header(&mut self) -> Result<()> {
        if !self.read()? {
            return Err(self.invalid("the input is empty (expected an export's header line)"));
        }
        let header: ExportHeader = serde_json::from_str(&self.line)
            .map_err(|e| self.invalid(format!("not an export header: {e}")))?;
        if header.format != EXPORT_FORMAT {
            return Err(self.invalid(format!(
                "format is {:?}, expected {EXPORT_FORMAT:?}",
                header.format
            )));
        }
        if header.version != EXPORT_VERSION {
            return Err(self.invalid(format!(
                "export version {} (this wasikv reads version {EXPORT_VERSION})",
                header.version
            )));
        }
        Ok(())
    }

    /// The next line; `None` at the end of the input.
    fn next(&mut self) -> Result<Option<Line>> {
        if !self.read()? {
            return Ok(None);
        }
        if let Ok(entry) = serde_json::from_str::<ExportEntry>(&self.line) {
            let value = BASE64.decode(entry.value.as_bytes()).map_err(|e| {
                self.invalid(format!("value of key {:?} is not base64: {e}", entry.key))
            })?;
            return Ok(Some(Line::Entry(entry.key, value)));
        }
        match serde_json::from_str::<ExportEnd>(&self.line) {
            Ok(end) if end.end => Ok(Some(Line::End(end))),
            _ => Err(self
                .invalid("expected {\"key\":..,\"value\":..} or the end line {\"end\":true,..}")),
        }
    }

    fn nothing_after_end(&mut self) -> Result<()> {
        while self.read()? {
            if !self.line.trim().is_empty() {
                return Err(self.invalid("a line after the end line"));
            }
        }
        Ok(())
    }
}

/// The state a checkpoint file holds.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    format: String,
    source: String,
    source_provider: String,
    destination: String,
    destination_provider: String,
    prefix: Option<String>,
    /// The source's listing token after the last finished page (base64).
    next: Option<String>,
    finished: bool,
    tally: Tally,
}

/// The `format` of a checkpoint file.
const CHECKPOINT_FORMAT: &str = "wasikv-copy-checkpoint-1";

/// A copy's checkpoint file: written (to a temporary file, synced, renamed
/// over) after every page, so it always holds a finished page's position.
struct Checkpoint {
    path: PathBuf,
    state: CheckpointState,
}

impl Checkpoint {
    fn load_or_start(
        path: &Path,
        src: &OpenBucket,
        dst: &OpenBucket,
        options: &CopyOptions,
    ) -> Result<Self> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::InvalidValue,
                format!("checkpoint {}: {why}", path.display()),
            )
        };
        let fresh = CheckpointState {
            format: CHECKPOINT_FORMAT.into(),
            source: src.name().into(),
            source_provider: src.provider().into(),
            destination: dst.name().into(),
            destination_provider: dst.provider().into(),
            prefix: options.prefix.clone(),
            next: None,
            finished: false,
            tally: Tally::default(),
        };
        let state = match std::fs::read(path) {
            Ok(bytes) => {
                let state: CheckpointState = serde_json::from_slice(&bytes)
                    .map_err(|e| bad(format!("not a copy checkpoint: {e}")))?;
                if state.format != CHECKPOINT_FORMAT {
                    return Err(bad(format!("format {:?}", state.format)));
                }
                let same = (&state.source, &state.destination, &state.prefix)
                    == (&fresh.source, &fresh.destination, &fresh.prefix);
                if !same {
                    return Err(bad(format!(
                        "it records a copy of {:?} to {:?} (prefix {:?}), not of {:?} to {:?} (prefix {:?}); use another file",
                        state.source,
                        state.destination,
                        state.prefix,
                        fresh.source,
                        fresh.destination,
                        fresh.prefix
                    )));
                }
                state
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh,
            Err(e) => return Err(bad(format!("cannot read: {e}"))),
        };
        Ok(Checkpoint {
            path: path.to_path_buf(),
            state,
        })
    }

    fn next_token(&self) -> Result<Option<Vec<u8>>> {
        self.state
            .next
            .as_deref()
            .map(|t| BASE64.decode(t))
            .transpose()
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidValue,
                    format!("checkpoint {}: bad position: {e}", self.path.display()),
                )
            })
    }

    fn save(&mut self, next: Option<&[u8]>, tally: Tally, finished: bool) -> Result<()> {
        self.state.next = next.map(|t| BASE64.encode(t));
        self.state.tally = tally;
        self.state.finished = finished;
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            serde_json::to_writer_pretty(&mut file, &self.state)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        };
        write().map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!("cannot write checkpoint {}: {e}", self.path.display()),
            )
        })
    }
}
