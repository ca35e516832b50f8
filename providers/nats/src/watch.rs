//! The change feed: a JetStream KV watcher of the bucket's keys (every
//! client's puts, deletes and purges, in stream order).

use async_nats::jetstream::kv;
use futures::StreamExt;
use wasikv_core::{Change, ChangeStream, Result};

use crate::core::{decode_key, map_err};

/// The changes of the keys under `prefix` (`PREFIX.` or empty) from now
/// on. The watcher is an ordered consumer created before this returns: a
/// write made after `watch` returns is delivered. Keys that are not a
/// canonical encoding (another client's) are skipped.
pub async fn watch(kv: kv::Store, prefix: String) -> Result<ChangeStream> {
    let watcher = if prefix.is_empty() {
        kv.watch_all().await
    } else {
        kv.watch(format!("{prefix}>")).await
    }
    .map_err(|e| map_err("watch", false, e))?;
    let changes = watcher.filter_map(move |entry| {
        let prefix = prefix.clone();
        async move {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => return Some(Err(map_err("watch", false, e))),
            };
            let key = decode_key(entry.key.strip_prefix(prefix.as_str())?)?;
            Some(Ok(match entry.operation {
                kv::Operation::Put => Change::Set {
                    key,
                    value: entry.value.to_vec(),
                },
                kv::Operation::Delete | kv::Operation::Purge => Change::Delete { key },
            }))
        }
    });
    Ok(Box::pin(changes))
}
