//! The native watch of a DynamoDB bucket: the table's stream (DynamoDB
//! Streams, view `NEW_AND_OLD_IMAGES`), which sees every client's writes.
//! Tables wasikv creates have it; on a table without it (or with another
//! view) `watch` is the host's host-local notifications.
//!
//! Each open shard is read from `LATEST` (taken before `watch` returns, so
//! every later change is seen), polled every [`POLL`]; a closed shard's
//! children are read from their start. A key lives in one shard, so its
//! changes arrive in order. Stream records are kept 24 hours.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, ShardIteratorType};
use wasikv_core::{Change, ChangeStream, Error, ErrorKind, KeyCodec, Result};

use crate::core::{COUNTER, ORIGINAL_KEY, VALUE};

/// How often open shards are polled when nothing is queued.
pub const POLL: Duration = Duration::from_millis(200);

/// Where a bucket's changes come from.
#[derive(Clone)]
pub struct StreamSource {
    /// The DynamoDB Streams client.
    pub client: StreamsClient,
    /// The table's latest stream.
    pub arn: String,
}

/// What decodes a record into a bucket's change.
pub(crate) struct Keys {
    pub key_attribute: String,
    pub prefix: String,
    pub codec: KeyCodec,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("DynamoDB Streams {what}: {e}"),
    )
}

impl Keys {
    /// The change of `record`, `None` for another bucket's item.
    fn change(&self, record: &Record) -> Option<Result<Change>> {
        let data = record.dynamodb()?;
        let id = data.keys()?.get(&self.key_attribute)?.as_s().ok()?;
        let encoded = id.strip_prefix(&self.prefix)?;
        let image = match record.event_name()? {
            OperationType::Remove => data.old_image(),
            _ => data.new_image(),
        };
        let key = match self.codec.decode(encoded) {
            Some(key) => key,
            None => match image
                .and_then(|i| i.get(ORIGINAL_KEY))
                .and_then(|v| v.as_s().ok())
            {
                Some(key) => key.clone(),
                None => {
                    return Some(Err(Error::new(
                        ErrorKind::Other,
                        format!("a stream record of item {id:?} was not written by wasikv"),
                    )));
                }
            },
        };
        Some(Ok(match record.event_name()? {
            OperationType::Remove => Change::Delete { key },
            _ => {
                let image = image?;
                let value = match (image.get(VALUE), image.get(COUNTER)) {
                    (Some(AttributeValue::B(bytes)), _) => bytes.as_ref().to_vec(),
                    (_, Some(AttributeValue::N(n))) => n.clone().into_bytes(),
                    _ => return None, // not a wasikv value
                };
                Change::Set { key, value }
            }
        }))
    }
}

struct Feed {
    source: StreamSource,
    keys: Keys,
    /// Open shards and their next iterator.
    shards: Vec<(String, String)>,
    known: HashSet<String>,
    out: VecDeque<Result<Change>>,
    failed: bool,
}

impl Feed {
    async fn iterator(&self, shard: &str, kind: ShardIteratorType) -> Result<String> {
        self.source
            .client
            .get_shard_iterator()
            .stream_arn(&self.source.arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .send()
            .await
            .map_err(|e| {
                unavailable(
                    "GetShardIterator",
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(e),
                )
            })?
            .shard_iterator
            .ok_or_else(|| unavailable("GetShardIterator", "no iterator"))
    }

    /// Adds the shards not seen yet: open ones from `first` (LATEST when the
    /// watch starts), children of closed shards from their start.
    async fn discover(&mut self, first: ShardIteratorType) -> Result<()> {
        let described = self
            .source
            .client
            .describe_stream()
            .stream_arn(&self.source.arn)
            .send()
            .await
            .map_err(|e| {
                unavailable(
                    "DescribeStream",
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(e),
                )
            })?;
        let shards = described
            .stream_description
            .map(|d| d.shards.unwrap_or_default())
            .unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id.clone() else {
                continue;
            };
            if !self.known.insert(id.clone()) {
                continue;
            }
            let open = shard
                .sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none());
            if !open && first == ShardIteratorType::Latest {
                continue; // closed before the watch started
            }
            let iterator = self.iterator(&id, first.clone()).await?;
            self.shards.push((id, iterator));
        }
        Ok(())
    }

    /// One round of reads over the open shards.
    async fn poll(&mut self) -> Result<()> {
        let mut closed = false;
        let mut open = Vec::with_capacity(self.shards.len());
        for (shard, iterator) in std::mem::take(&mut self.shards) {
            let out = self
                .source
                .client
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .map_err(|e| {
                    unavailable(
                        "GetRecords",
                        aws_sdk_dynamodbstreams::error::DisplayErrorContext(e),
                    )
                })?;
            for record in out.records() {
                if let Some(change) = self.keys.change(record) {
                    self.out.push_back(change);
                }
            }
            match out.next_shard_iterator {
                Some(next) => open.push((shard, next)),
                None => closed = true,
            }
        }
        self.shards = open;
        if closed {
            self.discover(ShardIteratorType::TrimHorizon).await?;
        }
        Ok(())
    }
}

/// Watches the bucket whose items `keys` decodes, on `source`'s stream.
pub(crate) async fn watch(source: StreamSource, keys: Keys) -> Result<ChangeStream> {
    let mut feed = Feed {
        source,
        keys,
        shards: Vec::new(),
        known: HashSet::new(),
        out: VecDeque::new(),
        failed: false,
    };
    feed.discover(ShardIteratorType::Latest).await?;
    Ok(Box::pin(futures::stream::unfold(
        feed,
        |mut feed| async move {
            loop {
                if let Some(change) = feed.out.pop_front() {
                    return Some((change, feed));
                }
                if feed.failed {
                    return None;
                }
                if let Err(e) = feed.poll().await {
                    feed.failed = true;
                    return Some((Err(e), feed));
                }
                if feed.out.is_empty() {
                    tokio::time::sleep(POLL).await;
                }
            }
        },
    )))
}
