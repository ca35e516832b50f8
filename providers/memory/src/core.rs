//! The maps behind memory buckets.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// One stored value and the write that made it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The bytes.
    pub value: Vec<u8>,
    /// Unique per write across the whole store.
    pub version: u64,
    /// When the entry expires (a bucket with a `ttl`); `None`: never.
    pub expires: Option<Instant>,
}

impl Entry {
    /// Whether the entry has not expired (the clock is read only for an
    /// entry that expires).
    pub fn is_live(&self) -> bool {
        self.expires.is_none_or(|at| Instant::now() < at)
    }
}

/// Entries a write looks at for expired ones to remove: every write of a
/// bucket with expiring entries advances a sweep this far through the keys
/// in order, so dead entries stay within a constant factor of the live ones
/// (a full pass takes one write per [`SWEEP_PER_WRITE`] entries, and each
/// write adds at most one entry) at a bounded cost per write.
pub const SWEEP_PER_WRITE: usize = 2;

/// A bucket's data.
pub type Map = RwLock<Keyspace>;

/// Keys and their entries: a hash map for the single-key calls (one hash,
/// one comparison), and the keys in order beside it for cursor paging, which
/// only creating and removing a key pays for (an overwrite does not). Both
/// hold the same `Arc<str>`, so a key is allocated once.
/// Expired entries are absent to every read (`get`, `get_mut`,
/// `contains_key`, `keys_after`) before the sweep removes them.
#[derive(Debug, Default)]
pub struct Keyspace {
    entries: HashMap<Arc<str>, Entry, foldhash::fast::RandomState>,
    order: BTreeSet<Arc<str>>,
    /// Whether any entry was written with an expiry: only then do listing
    /// and writes look at expiries.
    expiring: bool,
    /// Where the sweep goes on (the last key it looked at).
    swept_to: Option<Arc<str>>,
}

impl Keyspace {
    /// The live entry at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.is_live())
    }

    /// The live entry at `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.get_mut(key).filter(|e| e.is_live())
    }

    /// Whether a live entry is at `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `entry`: in place when present (no key allocation),
    /// else a new key, allocated once for both the map and the order.
    pub fn insert(&mut self, key: impl AsRef<str> + Into<Arc<str>>, entry: Entry) {
        if entry.expires.is_some() {
            self.expiring = true;
        }
        if self.expiring {
            self.sweep(SWEEP_PER_WRITE);
        }
        if let Some(current) = self.entries.get_mut(key.as_ref()) {
            *current = entry;
            return;
        }
        let key: Arc<str> = key.into();
        self.order.insert(key.clone());
        self.entries.insert(key, entry);
    }

    /// Looks at up to `budget` keys after the last one looked at (wrapping
    /// around) and removes those that expired.
    pub fn sweep(&mut self, budget: usize) {
        let start = self
            .swept_to
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Excluded);
        let mut looked: Vec<Arc<str>> = self
            .order
            .range::<str, _>((start, Bound::Unbounded))
            .take(budget)
            .cloned()
            .collect();
        if looked.len() < budget {
            // Wrapped: the next pass starts from the first key.
            self.swept_to = None;
        } else {
            self.swept_to = looked.last().cloned();
        }
        looked.retain(|k| self.entries.get(k).is_some_and(|e| !e.is_live()));
        for key in looked {
            self.remove_entry(&key);
        }
    }

    /// Removes `key`; whether a live entry was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.remove_entry(key).is_some_and(|e| e.is_live())
    }

    fn remove_entry(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.order.remove(key);
        Some(entry)
    }

    /// Live keys in order, after `after` (all keys when `None`).
    pub fn keys_after<'a>(&'a self, after: Option<&'a str>) -> impl Iterator<Item = &'a str> + 'a {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.order
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|k| !self.expiring || self.entries.get(&***k).is_some_and(Entry::is_live))
            .map(|k| &**k)
    }

    /// Entries held, expired ones not yet swept included.
    pub fn held(&self) -> usize {
        self.entries.len()
    }
}

/// All maps of one host, and the write counter that versions them.
#[derive(Debug, Default)]
pub struct MemoryStore {
    maps: Mutex<HashMap<String, Arc<Map>>>,
    writes: Arc<AtomicU64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The map named `name`, created empty on first use.
    pub fn map(&self, name: &str) -> Arc<Map> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        maps.entry(name.to_string()).or_default().clone()
    }

    /// The counter shared by all maps of this store.
    pub fn write_counter(&self) -> Arc<AtomicU64> {
        self.writes.clone()
    }
}

/// Returns the next version from `counter` (never 0, never repeated).
pub fn next_version(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(expires: Option<Instant>) -> Entry {
        Entry {
            value: b"v".to_vec(),
            version: 1,
            expires,
        }
    }

    #[test]
    fn expired_entries_are_absent_and_swept_as_writes_come() {
        let mut keys = Keyspace::default();
        let soon = Some(Instant::now() + std::time::Duration::from_millis(300));
        for i in 0..100 {
            keys.insert(format!("dead-{i:03}"), entry(soon));
        }
        keys.insert("live", entry(None));
        assert_eq!(keys.held(), 101, "swept entries that had not expired");
        std::thread::sleep(std::time::Duration::from_millis(350));
        assert!(keys.get("dead-000").is_none());
        assert!(!keys.contains_key("dead-050"));
        assert_eq!(keys.keys_after(None).collect::<Vec<_>>(), ["live"]);
        // Every write looks at SWEEP_PER_WRITE entries: a pass over the
        // keys takes (held / SWEEP_PER_WRITE) writes.
        let held = keys.held();
        assert!(held > 90, "swept before any pass: {held}");
        for _ in 0..(held / SWEEP_PER_WRITE + 2) {
            keys.insert("live", entry(None));
        }
        assert_eq!(keys.held(), 1, "expired entries left after a full pass");
        assert!(keys.get("live").is_some());
    }

    #[test]
    fn a_bucket_without_expiry_never_sweeps() {
        let mut keys = Keyspace::default();
        for i in 0..10 {
            keys.insert(format!("k{i}"), entry(None));
        }
        assert!(!keys.expiring && keys.swept_to.is_none());
        assert_eq!(keys.keys_after(Some("k4")).count(), 5);
    }
}
