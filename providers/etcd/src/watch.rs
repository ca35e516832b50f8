//! The native watch of an etcd bucket: an etcd watch on the bucket's prefix,
//! confirmed before `watch` returns, that sees every client's puts and
//! deletes in revision order. When the watch connection is lost, it is
//! re-created from the revision after the last one delivered (etcd keeps
//! the history), for up to [`RESUME_FOR`]; nothing is lost or repeated
//! unless etcd compacted that history meanwhile, which ends the watch with
//! an error.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use etcd_client::{EventType, WatchClient, WatchOptions, WatchResponse, WatchStream};
use wasikv_core::{Change, ChangeStream, Error, ErrorKind, Result};

use crate::core::map_err;

/// How long a lost watch keeps trying to resume.
pub const RESUME_FOR: Duration = Duration::from_secs(60);

struct Feed {
    client: WatchClient,
    prefix: Vec<u8>,
    stream: WatchStream,
    /// The revision to resume from: one after the last change seen.
    next_revision: i64,
    out: VecDeque<Result<Change>>,
    ended: bool,
}

/// The changes of one response, keys without the bucket prefix; advances
/// `next_revision` past them.
fn changes_of(
    prefix: &[u8],
    response: &WatchResponse,
    next_revision: &mut i64,
) -> Vec<Result<Change>> {
    response
        .events()
        .iter()
        .filter_map(|event| {
            let kv = event.kv()?;
            *next_revision = (*next_revision).max(kv.mod_revision() + 1);
            let key = kv.key().strip_prefix(prefix)?;
            let Ok(key) = String::from_utf8(key.to_vec()) else {
                return Some(Err(Error::new(
                    ErrorKind::Other,
                    "a non-UTF-8 key under the bucket prefix",
                )));
            };
            Some(Ok(match event.event_type() {
                EventType::Put => Change::Set {
                    key,
                    value: kv.value().to_vec(),
                },
                EventType::Delete => Change::Delete { key },
            }))
        })
        .collect()
}

/// Creates a watch on `prefix` (from `start` when resuming) and waits for
/// etcd's confirmation; returns the stream, the changes already in the
/// confirmation, and the revision changes will follow.
async fn open(
    client: &mut WatchClient,
    prefix: &[u8],
    start: Option<i64>,
) -> Result<(WatchStream, Vec<Result<Change>>, i64)> {
    let mut options = WatchOptions::new().with_prefix();
    if let Some(revision) = start {
        options = options.with_start_revision(revision);
    }
    let mut stream = client
        .watch(prefix.to_vec(), Some(options))
        .await
        .map_err(map_err)?;
    let first = stream
        .message()
        .await
        .map_err(map_err)?
        .ok_or_else(|| Error::new(ErrorKind::Unavailable, "etcd closed the watch"))?;
    if first.canceled() {
        return Err(cancelled(&first));
    }
    let mut next = start.unwrap_or_else(|| first.header().map_or(0, |h| h.revision()) + 1);
    let changes = changes_of(prefix, &first, &mut next);
    Ok((stream, changes, next))
}

fn cancelled(response: &WatchResponse) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "etcd cancelled the watch (compacted at revision {}): {}",
            response.compact_revision(),
            response.cancel_reason()
        ),
    )
}

impl Feed {
    /// Re-creates the watch after a lost connection, with backoff, for up
    /// to [`RESUME_FOR`].
    async fn resume(&mut self, cause: Error) {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match open(&mut self.client, &self.prefix, Some(self.next_revision)).await {
                Ok((stream, changes, next)) => {
                    self.stream = stream;
                    self.next_revision = next;
                    self.out.extend(changes);
                    return;
                }
                Err(e) if started.elapsed() < RESUME_FOR && e.kind() == ErrorKind::Unavailable => {
                    tracing::debug!("etcd watch not resumed yet ({e}); retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    self.out.push_back(Err(Error::new(
                        e.kind(),
                        format!("the etcd watch was lost ({cause}) and could not resume: {e}"),
                    )));
                    self.ended = true;
                    return;
                }
            }
        }
    }
}

/// Watches the keys under `prefix`.
pub async fn watch(mut client: WatchClient, prefix: Vec<u8>) -> Result<ChangeStream> {
    let (stream, changes, next_revision) = open(&mut client, &prefix, None).await?;
    let feed = Feed {
        client,
        prefix,
        stream,
        next_revision,
        out: changes.into(),
        ended: false,
    };
    Ok(Box::pin(futures::stream::unfold(
        feed,
        |mut feed| async move {
            loop {
                if let Some(change) = feed.out.pop_front() {
                    return Some((change, feed));
                }
                if feed.ended {
                    return None;
                }
                match feed.stream.message().await {
                    Ok(Some(response)) if response.canceled() => {
                        feed.out.push_back(Err(cancelled(&response)));
                        feed.ended = true;
                    }
                    Ok(Some(response)) => {
                        let changes = changes_of(&feed.prefix, &response, &mut feed.next_revision);
                        feed.out.extend(changes);
                    }
                    Ok(None) => {
                        feed.resume(Error::new(ErrorKind::Unavailable, "the stream ended"))
                            .await
                    }
                    Err(e) => feed.resume(map_err(e)).await,
                }
            }
        },
    )))
}
