//! Options of a memory bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "memory"`.
///
/// ```toml
/// [buckets.scratch]
/// provider = "memory"
/// map = "scratch"            # default: the bucket name
/// max_value_bytes = 1048576  # default: no limit of its own
/// max_batch_items = 100      # default: no limit
/// required_only = false      # true: serve only the required operations
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The map this bucket uses; buckets naming the same map would overlap
    /// and are refused. Default: the bucket name.
    pub map: Option<String>,
    /// Largest value accepted, in bytes.
    pub max_value_bytes: Option<usize>,
    /// Most items in one native batch call; larger batches are refused with
    /// `too-large` (the host chunks to this limit). For testing the chunking.
    pub max_batch_items: Option<usize>,
    /// Serve only the required operations (get, set, delete, exists, list,
    /// CAS), so that the host emulates increment and batches. For testing the
    /// emulation layer.
    #[serde(default)]
    pub required_only: bool,
}
