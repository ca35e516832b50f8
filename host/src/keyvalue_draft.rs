//! `wasi:keyvalue@0.2.0-draft`, the version of `wasmtime-wasi-keyvalue` and
//! wasmCloud components, served from the same buckets as `0.2.0-draft2`.
//!
//! Differences bridged here: `increment` takes and returns `u64` (a delta over
//! `i64::MAX` or a negative counter is an error, never a wrap); `list-keys`
//! cursors are numbers, handed out from a bounded per-instance table of the
//! host's sealed cursors (an unknown or evicted number is an error); there is
//! no CAS.

use std::collections::VecDeque;

use wasikv_core::{Error, ErrorKind};
use wasmtime::component::{Linker, Resource};

use crate::keyvalue::{BucketResource, HasWasiKeyValue, WasiKeyValue, WitError};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/draft",
        world: "wasi:keyvalue/imports@0.2.0-draft",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::keyvalue::BucketResource,
        },
    });
}

use generated::wasi::keyvalue::{atomics, batch, store};

/// Most numeric cursors one instance keeps; older ones are forgotten.
pub const MAX_DRAFT_CURSORS: usize = 1024;

/// Numeric cursors of one instance: number → (bucket, sealed cursor).
#[derive(Debug, Default)]
pub struct DraftCursors {
    next: u64,
    entries: VecDeque<(u64, String, String)>,
}

impl DraftCursors {
    fn issue(&mut self, bucket: &str, cursor: String) -> u64 {
        self.next += 1;
        self.entries
            .push_back((self.next, bucket.to_string(), cursor));
        while self.entries.len() > MAX_DRAFT_CURSORS {
            self.entries.pop_front();
        }
        self.next
    }

    /// The sealed cursor of `number`, left in the table: a call that fails
    /// (a timeout, say) leaves the guest's place usable for a retry.
    fn get(&self, bucket: &str, number: u64) -> Result<String, Error> {
        match self
            .entries
            .iter()
            .find(|(n, b, _)| *n == number && b == bucket)
        {
            Some((_, _, cursor)) => Ok(cursor.clone()),
            None => Err(Error::new(
                ErrorKind::InvalidCursor,
                format!(
                    "unknown list-keys cursor {number}: pass back only a cursor this bucket returned (each is used once; an instance keeps the last {MAX_DRAFT_CURSORS})"
                ),
            )),
        }
    }

    /// Forgets `number` once the page it continued was served.
    fn consume(&mut self, number: u64) {
        self.entries.retain(|(n, _, _)| *n != number);
    }
}

type WitResult<T> = wasmtime::Result<Result<T, store::Error>>;

fn wit<T>(result: wasikv_core::Result<T>) -> WitResult<T> {
    Ok(result.map_err(|e| match WitError::from(e) {
        WitError::NoSuchStore => store::Error::NoSuchStore,
        WitError::AccessDenied => store::Error::AccessDenied,
        WitError::Other(message) => store::Error::Other(message),
    }))
}

/// Adds `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` to `linker`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> WasiKeyValue<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasWasiKeyValue>(linker, f)?;
    atomics::add_to_linker::<_, HasWasiKeyValue>(linker, f)?;
    batch::add_to_linker::<_, HasWasiKeyValue>(linker, f)?;
    Ok(())
}

impl store::Host for WasiKeyValue<'_> {
    async fn open(&mut self, identifier: String) -> WitResult<Resource<BucketResource>> {
        wit(self.open_resource(&identifier).await?)
    }
}

impl store::HostBucket for WasiKeyValue<'_> {
    async fn get(
        &mut self,
        bucket: Resource<BucketResource>,
        key: String,
    ) -> WitResult<Option<Vec<u8>>> {
        let b = self.bucket(&bucket)?;
        wit(b.get(&key).await)
    }

    async fn set(
        &mut self,
        bucket: Resource<BucketResource>,
        key: String,
        value: Vec<u8>,
    ) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.set(key, value).await)
    }

    async fn delete(&mut self, bucket: Resource<BucketResource>, key: String) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.delete(&key).await)
    }

    async fn exists(&mut self, bucket: Resource<BucketResource>, key: String) -> WitResult<bool> {
        let b = self.bucket(&bucket)?;
        wit(b.exists(&key).await)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<BucketResource>,
        cursor: Option<u64>,
    ) -> WitResult<store::KeyResponse> {
        let b = self.bucket(&bucket)?;
        let sealed = match cursor {
            None => None,
            Some(n) => {
                let found = self
                    .ctx
                    .draft_cursors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(b.name(), n)
                    .map_err(|e| e.in_bucket(b.name(), b.provider()));
                match found {
                    Ok(c) => Some(c),
                    Err(e) => return wit(Err(e)),
                }
            }
        };
        let page = b.list_keys(sealed.as_deref()).await;
        wit(page.map(|(keys, next)| {
            let mut cursors = self
                .ctx
                .draft_cursors
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = cursor {
                cursors.consume(n);
            }
            let cursor = next.map(|c| cursors.issue(b.name(), c));
            store::KeyResponse { keys, cursor }
        }))
    }

    async fn drop(&mut self, bucket: Resource<BucketResource>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for WasiKeyValue<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<BucketResource>,
        key: String,
        delta: u64,
    ) -> WitResult<u64> {
        let b = self.bucket(&bucket)?;
        wit(b.increment_unsigned(&key, delta).await)
    }
}

impl batch::Host for WasiKeyValue<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<BucketResource>,
        keys: Vec<String>,
    ) -> WitResult<Vec<Option<(String, Vec<u8>)>>> {
        let b = self.bucket(&bucket)?;
        wit(b.get_many(keys).await)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<BucketResource>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.set_many(key_values).await)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<BucketResource>,
        keys: Vec<String>,
    ) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.delete_many(keys).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_cursors_are_bounded_single_use_and_per_bucket() {
        let mut cursors = DraftCursors::default();
        let a = cursors.issue("a", "sealed-a".into());
        let b = cursors.issue("b", "sealed-b".into());
        assert_eq!(
            cursors.get("b", a).unwrap_err().kind(),
            ErrorKind::InvalidCursor
        );
        assert_eq!(cursors.get("a", a).unwrap(), "sealed-a");
        // Looking a cursor up (for a call that may fail) keeps it ...
        assert_eq!(
            cursors.get("a", a).unwrap(),
            "sealed-a",
            "kept until served"
        );
        // ... serving its page uses it up.
        cursors.consume(a);
        assert!(cursors.get("a", a).is_err(), "used once");
        assert_eq!(cursors.get("b", b).unwrap(), "sealed-b");
        assert!(cursors.get("a", 999).is_err());
        let first = cursors.issue("a", "old".into());
        for i in 0..MAX_DRAFT_CURSORS {
            cursors.issue("a", format!("c{i}"));
        }
        assert!(cursors.get("a", first).is_err(), "evicted");
        assert_eq!(cursors.entries.len(), MAX_DRAFT_CURSORS);
    }
}
