//! The capability matrix: per operation native / emulated / unsupported, plus
//! limits. A provider declares its [`Capabilities`] once; the behavior suite
//! checks the declaration in both directions (declared support must work,
//! declared non-support must return [`ErrorKind::Unsupported`](crate::ErrorKind)),
//! and the host derives the emulated entries from it. Docs and the CLI render
//! it with [`Capabilities::markdown_table`].

use std::fmt;

use crate::expiry::Expiry;

/// How an operation is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The store does it in one native operation (or one native batch).
    Native,
    /// The host builds it from other operations.
    Emulated {
        /// How, in a few words (e.g. "CAS retry loop").
        how: &'static str,
        /// Whether the emulation is correct against every client of the store,
        /// or only among users of this host process.
        scope: EmulationScope,
    },
    /// Not available: calls return `unsupported`.
    Unsupported,
}

impl Support {
    /// Native or emulated.
    pub fn is_available(self) -> bool {
        !matches!(self, Support::Unsupported)
    }

    /// Native.
    pub fn is_native(self) -> bool {
        matches!(self, Support::Native)
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::Native => f.write_str("native"),
            Support::Emulated {
                how,
                scope: EmulationScope::Store,
            } => write!(f, "emulated ({how})"),
            Support::Emulated {
                how,
                scope: EmulationScope::ProcessLocal,
            } => write!(f, "emulated, process-local ({how})"),
            Support::Unsupported => f.write_str("unsupported"),
        }
    }
}

/// Where an emulation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulationScope {
    /// Correct for every client of the store (built on the store's own CAS).
    Store,
    /// Correct only among users of this host process (e.g. a local lock).
    ProcessLocal,
}

/// Read consistency of a store for the same client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Reads see every acknowledged write.
    Strong,
    /// Reads may be stale (still read-your-writes for the same client).
    Eventual,
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Consistency::Strong => "strong",
            Consistency::Eventual => "eventual",
        })
    }
}

/// How much of one native `set-many` batch applies atomically. A guest's batch larger than the store's batch limit is split
/// by the host, and no batch is atomic as a whole to a guest (the WIT says
/// so); this says what holds within one native batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAtomicity {
    /// All items or none (a transaction or a script).
    All,
    /// All or none within each group named here (e.g. "hash slot"), not
    /// across groups.
    PerGroup(&'static str),
    /// Item by item: a failure may leave earlier items applied.
    PerItem,
}

impl fmt::Display for BatchAtomicity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchAtomicity::All => f.write_str("all or none"),
            BatchAtomicity::PerGroup(group) => write!(f, "all or none per {group}"),
            BatchAtomicity::PerItem => f.write_str("per item"),
        }
    }
}

/// The operations of the matrix, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `store.bucket.get`
    Get,
    /// `store.bucket.set`
    Set,
    /// `store.bucket.delete`
    Delete,
    /// `store.bucket.exists`
    Exists,
    /// `store.bucket.list-keys`
    List,
    /// `atomics.cas` + `swap` (conditional writes with a version)
    Cas,
    /// `atomics.increment`
    Increment,
    /// `batch.get-many`
    GetMany,
    /// `batch.set-many`
    SetMany,
    /// `batch.delete-many`
    DeleteMany,
    /// Change notifications for the `watcher` export (world `watch-service`).
    Watch,
}

impl Operation {
    /// Every operation, in display order.
    pub const ALL: [Operation; 11] = [
        Operation::Get,
        Operation::Set,
        Operation::Delete,
        Operation::Exists,
        Operation::List,
        Operation::Cas,
        Operation::Increment,
        Operation::GetMany,
        Operation::SetMany,
        Operation::DeleteMany,
        Operation::Watch,
    ];

    /// The WIT name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Delete => "delete",
            Operation::Exists => "exists",
            Operation::List => "list-keys",
            Operation::Cas => "cas/swap",
            Operation::Increment => "increment",
            Operation::GetMany => "get-many",
            Operation::SetMany => "set-many",
            Operation::DeleteMany => "delete-many",
            Operation::Watch => "watch",
        }
    }
}

/// What a bucket of a provider can do, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `get`; always native for a provider.
    pub get: Support,
    /// `set` (unconditional).
    pub set: Support,
    /// `delete`.
    pub delete: Support,
    /// `exists`.
    pub exists: Support,
    /// Paged `list-keys`.
    pub list: Support,
    /// Conditional writes (`IfAbsent`, `IfVersion`) and versioned reads: CAS.
    pub cas: Support,
    /// `increment`.
    pub increment: Support,
    /// `get-many`.
    pub get_many: Support,
    /// `set-many`.
    pub set_many: Support,
    /// `delete-many`.
    pub delete_many: Support,
    /// Change notifications (native: the store's own change feed, which sees
    /// every client's writes).
    pub watch: Support,
    /// Longest key in bytes the store takes after the key codec, if limited.
    pub max_key_bytes: Option<usize>,
    /// Largest value in bytes, if limited.
    pub max_value_bytes: Option<usize>,
    /// Values longer than this are stored by the host's chunking layer, in
    /// chunks behind a manifest (see [`crate::chunks`]); `None`: never. A
    /// provider leaves it `None`; the host sets it where the store's own
    /// `max_value_bytes` is below its `limits.max_value_bytes`.
    pub chunked_above: Option<usize>,
    /// Most items in one native batch call, if limited (the host chunks above it).
    pub max_batch_items: Option<usize>,
    /// Whether [`Bucket::get_many_within`](crate::Bucket::get_many_within) is
    /// native: the store sees the values' sizes before sending them (an
    /// in-process map, a Redis script), so a result over a byte budget is
    /// refused without being held.
    pub budgeted_get_many: bool,
    /// Whether [`Bucket::increment_at_least`](crate::Bucket::increment_at_least)
    /// is native: the check of the new counter against a lower bound and
    /// the add are one atomic step.
    pub bounded_increment: bool,
    /// Most items in one native `set-many` or `delete-many` call where that
    /// is less than [`Capabilities::max_batch_items`] (DynamoDB reads 100
    /// items per call, writes 25); `None`: the same.
    pub max_write_batch_items: Option<usize>,
    /// What applies atomically within one native `set-many` batch.
    pub set_many_atomicity: BatchAtomicity,
    /// Read consistency.
    pub consistency: Consistency,
    /// Whether acknowledged writes survive a restart of the store.
    pub durable: bool,
    /// How CAS versions are made (e.g. "write counter", "mod_revision").
    pub versioning: &'static str,
    /// How a bucket's `ttl` is honoured (see [`crate::expiry`]).
    pub expiry: Expiry,
}

impl Capabilities {
    /// The required operations native (get, set, delete, exists, list, CAS),
    /// the optional ones unsupported, no limits, strong, not durable.
    pub fn required() -> Self {
        Capabilities {
            get: Support::Native,
            set: Support::Native,
            delete: Support::Native,
            exists: Support::Native,
            list: Support::Native,
            cas: Support::Native,
            increment: Support::Unsupported,
            get_many: Support::Unsupported,
            set_many: Support::Unsupported,
            delete_many: Support::Unsupported,
            watch: Support::Unsupported,
            max_key_bytes: None,
            max_value_bytes: None,
            chunked_above: None,
            max_batch_items: None,
            max_write_batch_items: None,
            set_many_atomicity: BatchAtomicity::PerItem,
            budgeted_get_many: false,
            bounded_increment: false,
            consistency: Consistency::Strong,
            durable: false,
            versioning: "",
            expiry: Expiry::Unsupported,
        }
    }

    /// `TooLarge` when a value of `len` bytes is over [`Capabilities::max_value_bytes`].
    pub fn check_value(&self, len: usize) -> crate::Result<()> {
        match self.max_value_bytes {
            Some(max) if len > max => Err(crate::Error::too_large("value", len, max)),
            _ => Ok(()),
        }
    }

    /// The write batch limit: [`Capabilities::max_write_batch_items`], else
    /// [`Capabilities::max_batch_items`].
    pub fn write_batch_limit(&self) -> Option<usize> {
        self.max_write_batch_items.or(self.max_batch_items)
    }

    /// `TooLarge` when a native write batch of `items` is over [`Capabilities::write_batch_limit`].
    pub fn check_write_batch(&self, items: usize) -> crate::Result<()> {
        match self.write_batch_limit() {
            Some(max) if items > max => Err(crate::Error::new(
                crate::ErrorKind::TooLarge,
                format!("write batch of {items} items is over the limit of {max} items"),
            )),
            _ => Ok(()),
        }
    }

    /// `TooLarge` when a native batch of `items` is over [`Capabilities::max_batch_items`].
    pub fn check_batch(&self, items: usize) -> crate::Result<()> {
        match self.max_batch_items {
            Some(max) if items > max => Err(crate::Error::new(
                crate::ErrorKind::TooLarge,
                format!("batch of {items} items is over the limit of {max} items"),
            )),
            _ => Ok(()),
        }
    }

    /// The support of one operation.
    pub fn support(&self, op: Operation) -> Support {
        match op {
            Operation::Get => self.get,
            Operation::Set => self.set,
            Operation::Delete => self.delete,
            Operation::Exists => self.exists,
            Operation::List => self.list,
            Operation::Cas => self.cas,
            Operation::Increment => self.increment,
            Operation::GetMany => self.get_many,
            Operation::SetMany => self.set_many,
            Operation::DeleteMany => self.delete_many,
            Operation::Watch => self.watch,
        }
    }

    /// Mutable access to the support of one operation.
    pub fn support_mut(&mut self, op: Operation) -> &mut Support {
        match op {
            Operation::Get => &mut self.get,
            Operation::Set => &mut self.set,
            Operation::Delete => &mut self.delete,
            Operation::Exists => &mut self.exists,
            Operation::List => &mut self.list,
            Operation::Cas => &mut self.cas,
            Operation::Increment => &mut self.increment,
            Operation::GetMany => &mut self.get_many,
            Operation::SetMany => &mut self.set_many,
            Operation::DeleteMany => &mut self.delete_many,
            Operation::Watch => &mut self.watch,
        }
    }

    /// A markdown table with one column per provider: `(name, capabilities)`.
    pub fn markdown_table(columns: &[(&str, &Capabilities)]) -> String {
        let mut out = String::from("| operation |");
        for (name, _) in columns {
            out.push_str(&format!(" {name} |"));
        }
        out.push_str("\n|---|");
        for _ in columns {
            out.push_str("---|");
        }
        out.push('\n');
        let mut row = |label: &str, cell: &dyn Fn(&Capabilities) -> String| {
            out.push_str(&format!("| {label} |"));
            for (_, caps) in columns {
                out.push_str(&format!(" {} |", cell(caps)));
            }
            out.push('\n');
        };
        for op in Operation::ALL {
            row(op.name(), &|c| c.support(op).to_string());
        }
        let limit = |v: Option<usize>| v.map_or("none".to_string(), |n| n.to_string());
        row("max key bytes", &|c| limit(c.max_key_bytes));
        row("max value bytes", &|c| limit(c.max_value_bytes));
        row(
            "larger values",
            &|c| match (c.max_value_bytes, c.chunked_above) {
                (_, Some(_)) => "emulated (chunks + manifest)".to_string(),
                (None, None) => "n/a".to_string(),
                (Some(_), None) => "too-large".to_string(),
            },
        );
        row(
            "max batch items",
            &|c| match (c.max_batch_items, c.max_write_batch_items) {
                (read, Some(write)) if Some(write) != read => {
                    format!("{} (writes {write})", limit(read))
                }
                (read, _) => limit(read),
            },
        );
        row("set-many atomicity", &|c| c.set_many_atomicity.to_string());
        row("consistency", &|c| c.consistency.to_string());
        row("durable", &|c| {
            if c.durable { "yes" } else { "no" }.to_string()
        });
        row("CAS versions", &|c| c.versioning.to_string());
        row("expiry (ttl)", &|c| c.expiry.to_string());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_row_per_operation_and_limit() {
        let caps = Capabilities::required();
        let table = Capabilities::markdown_table(&[("memory", &caps)]);
        assert_eq!(table.lines().count(), 2 + Operation::ALL.len() + 9);
        assert!(table.contains("| increment | unsupported |"));
        assert!(table.contains("| get | native |"));
    }

    #[test]
    fn emulated_labels_process_local() {
        let s = Support::Emulated {
            how: "local lock",
            scope: EmulationScope::ProcessLocal,
        };
        assert_eq!(s.to_string(), "emulated, process-local (local lock)");
    }
}
