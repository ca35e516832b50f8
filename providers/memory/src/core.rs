//! The maps behind memory buckets.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// One stored value and the write that made it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The bytes.
    pub value: Vec<u8>,
    /// Unique per write across the whole store.
    pub version: u64,
}

/// A bucket's data.
pub type Map = RwLock<Keyspace>;

/// Keys and their entries: a hash map for the single-key calls (one hash,
/// one comparison), and the keys in order beside it for cursor paging, which
/// only creating and removing a key pays for (an overwrite does not). Both
/// hold the same `Arc<str>`, so a key is allocated once.
#[derive(Debug, Default)]
pub struct Keyspace {
    entries: HashMap<Arc<str>, Entry, foldhash::fast::RandomState>,
    order: BTreeSet<Arc<str>>,
}

impl Keyspace {
    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The entry at `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.get_mut(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Sets `key` to `entry`: in place when present (no key allocation),
    /// else a new key, allocated once for both the map and the order.
    pub fn insert(&mut self, key: impl AsRef<str> + Into<Arc<str>>, entry: Entry) {
        if let Some(current) = self.entries.get_mut(key.as_ref()) {
            *current = entry;
            return;
        }
        let key: Arc<str> = key.into();
        self.order.insert(key.clone());
        self.entries.insert(key, entry);
    }

    /// Removes `key`; whether it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        if self.entries.remove(key).is_some() {
            self.order.remove(key);
            true
        } else {
            false
        }
    }

    /// Keys in order, after `after` (all keys when `None`).
    pub fn keys_after<'a>(&'a self, after: Option<&'a str>) -> impl Iterator<Item = &'a str> + 'a {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.order
            .range::<str, _>((start, Bound::Unbounded))
            .map(|k| &**k)
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
