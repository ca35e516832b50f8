//! The native watch of a Redis bucket.
//!
//! wasikv's write scripts publish every change (key and value) on the
//! bucket's channel inside the same atomic script ([`crate::core::parse_change`]),
//! so a subscription sees every wasikv writer exactly, in order. When the
//! server has keyspace notifications on (`notify-keyspace-events` with `K`
//! and `$`+`g`, or `A`), the watch also subscribes to the bucket's keyspace
//! events to see writes by other Redis clients: a keyspace event followed by
//! wasikv's own message for the same key was wasikv's write and is dropped;
//! one not followed within [`FOREIGN_AFTER`] was another client's, and is
//! delivered with the value read back (so quick successive foreign writes of
//! one key may arrive as one change with the newest value).
//!
//! On a Redis Cluster the watch subscribes, on the first seed node that
//! answers, to the channels of all 256 groups of the bucket (a cluster
//! delivers a `PUBLISH` to subscribers on every node). Keyspace events are
//! per node there, so writes by other clients are not seen; the capability
//! matrix and the provider guide say so. The watch ends with `unavailable`
//! when its node goes away, like a watch on a single server.
//!
//! A task drains the subscription into a bounded queue of [`QUEUE`]
//! messages; a watcher that falls further behind loses the oldest (a warning
//! gives their count), as with the host's own notifications, so a slow
//! watcher never grows the host's memory.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use wasikv_core::{Change, ChangeStream, Error, ErrorKind, Result};

use crate::core::{Connection, Layout, map_err, parse_change};

/// Messages queued for a watcher.
pub const QUEUE: usize = 1024;

/// How long a keyspace event waits for wasikv's own message before it is
/// taken as another client's write.
pub const FOREIGN_AFTER: Duration = Duration::from_millis(20);

/// Whether a `notify-keyspace-events` setting reports the string and generic
/// events of keys.
pub fn keyspace_events_on(setting: &str) -> bool {
    setting.contains('K')
        && (setting.contains('A') || (setting.contains('$') && setting.contains('g')))
}

/// `s` with the glob characters of a Redis pattern escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A keyspace event waiting to be matched with wasikv's own message.
struct Pending {
    key: String,
    event: String,
}

struct Feed {
    messages: tokio::sync::broadcast::Receiver<redis::Msg>,
    conn: Connection,
    /// Where the bucket's keys are.
    layout: Layout,
    /// `__keyspace@<db>__:<prefix>`, when keyspace events are on.
    keyspace: Option<Vec<u8>>,
    pending: Option<Pending>,
    out: VecDeque<Result<Change>>,
    ended: bool,
}

impl Feed {
    /// The next message, `None` when the subscription ended.
    async fn next_message(&mut self) -> Option<redis::Msg> {
        loop {
            match self.messages.recv().await {
                Ok(message) => return Some(message),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(lost)) => {
                    tracing::warn!("a Redis watcher fell behind: {lost} changes dropped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Delivers a foreign write: a delete, or the value read back now.
    async fn flush(&mut self) {
        let Some(Pending { key, event }) = self.pending.take() else {
            return;
        };
        match event.as_str() {
            "del" | "unlink" | "expired" | "evicted" | "rename_from" | "move_from" => {
                self.out.push_back(Ok(Change::Delete { key }))
            }
            _ => {
                let data_key = self.layout.data_key(&key);
                let read: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
                    .arg(&data_key)
                    .query_async(&mut self.conn)
                    .await;
                // Gone again (its delete event follows), or not a string: nothing.
                if let Ok(Some(value)) = read {
                    self.out.push_back(Ok(Change::Set { key, value }));
                }
            }
        }
    }

    /// Takes in one message; returns whether the pending keyspace event must
    /// be flushed first (then the message is offered again).
    fn on_message(&mut self, message: &redis::Msg) -> bool {
        if message.from_pattern() {
            let Some(prefix) = &self.keyspace else {
                return false;
            };
            let Ok(channel) = message.get_channel::<Vec<u8>>() else {
                return false;
            };
            let Some(key) = channel
                .strip_prefix(prefix.as_slice())
                .and_then(|k| String::from_utf8(k.to_vec()).ok())
            else {
                return false; // wasikv's own bookkeeping keys, or not UTF-8
            };
            let event = String::from_utf8_lossy(message.get_payload_bytes()).into_owned();
            match &mut self.pending {
                Some(p) if p.key == key => p.event = event,
                Some(_) => return true,
                None => self.pending = Some(Pending { key, event }),
            }
            return false;
        }
        let Some(change) = parse_change(message.get_payload_bytes()) else {
            return false;
        };
        if self.pending.as_ref().is_some_and(|p| p.key == change.key()) {
            self.pending = None; // the keyspace event was this write
        } else if self.pending.is_some() {
            return true;
        }
        self.out.push_back(Ok(change));
        false
    }
}

/// Subscribes to the changes of the bucket laid out as `layout` (the
/// channels of its groups), through the first of `clients` that answers.
pub async fn watch(
    clients: &[redis::Client],
    conn: Connection,
    layout: &Layout,
) -> Result<ChangeStream> {
    let mut last_error = None;
    let mut subscribed = None;
    for client in clients {
        match client.get_async_pubsub().await {
            Ok(pubsub) => {
                subscribed = Some((client, pubsub));
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let Some((client, mut pubsub)) = subscribed else {
        return Err(match last_error {
            Some(e) => map_err(e),
            None => Error::unsupported("watch"),
        });
    };
    // Each subscribe returns once Redis confirmed it.
    let channels: Vec<&[u8]> = layout
        .groups()
        .iter()
        .map(|g| g.versions.as_slice())
        .collect();
    pubsub.subscribe(channels).await.map_err(map_err)?;
    let keyspace = if layout.is_cluster() {
        None // keyspace events are per node on a cluster
    } else {
        let setting: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut conn.clone())
            .await
            .unwrap_or_default(); // CONFIG may be disabled (managed Redis): wasikv writers only
        if setting.get(1).is_some_and(|s| keyspace_events_on(s)) {
            let prefix = layout.prefix();
            let db = client.get_connection_info().redis_settings().db();
            let channel = format!("__keyspace@{db}__:{prefix}");
            pubsub
                .psubscribe(format!("__keyspace@{db}__:{}*", glob_escape(prefix)))
                .await
                .map_err(map_err)?;
            Some(channel.into_bytes())
        } else {
            None
        }
    };
    // The crate's pub/sub stream is unbounded: drain it into a bounded queue.
    let (queue, messages) = tokio::sync::broadcast::channel(QUEUE);
    let mut stream = pubsub.into_on_message();
    tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            if queue.send(message).is_err() {
                return; // the watch was dropped
            }
        }
        // Dropping `queue` ends the watch.
    });
    let feed = Feed {
        messages,
        conn,
        layout: layout.clone(),
        keyspace,
        pending: None,
        out: VecDeque::new(),
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
                let next = if feed.pending.is_some() {
                    match tokio::time::timeout(FOREIGN_AFTER, feed.next_message()).await {
                        Ok(next) => next,
                        Err(_) => {
                            feed.flush().await;
                            continue;
                        }
                    }
                } else {
                    feed.next_message().await
                };
                match next {
                    Some(message) => {
                        if feed.on_message(&message) {
                            feed.flush().await;
                            feed.on_message(&message);
                        }
                    }
                    None => {
                        feed.flush().await;
                        feed.ended = true;
                        feed.out.push_back(Err(Error::new(
                            ErrorKind::Unavailable,
                            "the Redis connection of the watch closed",
                        )));
                    }
                }
            }
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_settings() {
        assert!(keyspace_events_on("KEA"));
        assert!(keyspace_events_on("K$g"));
        assert!(keyspace_events_on("gK$x"));
        assert!(!keyspace_events_on(""));
        assert!(!keyspace_events_on("E$g"));
        assert!(!keyspace_events_on("K$"));
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
