//! The maps behind memory buckets.

use std::collections::{BTreeMap, HashMap};
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

/// A bucket's data: a sorted map (sorted for cursor paging).
pub type Map = RwLock<BTreeMap<String, Entry>>;

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
