//! The connection, the key layout, the server-side scripts and the one
//! mapper from Redis errors to wasikv errors.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};
use wasikv_core::{Error, ErrorKind};

/// Start of every key wasikv keeps beside the data: `0xFF` cannot start a
/// UTF-8 string, so no bucket key can collide with it.
pub const META: &[u8] = b"\xffwasikv\xff";

/// The version-token hash of a bucket on a single server.
pub fn versions_key(prefix: &str) -> Vec<u8> {
    [META, b"v:", prefix.as_bytes()].concat()
}

/// The key index (sorted set) of a bucket on a single server.
pub fn index_key(prefix: &str) -> Vec<u8> {
    [META, b"i:", prefix.as_bytes()].concat()
}

/// Slots of a Redis Cluster.
pub const SLOTS: usize = 16384;

/// Groups of a bucket on a Redis Cluster: its keys spread over this many
/// hash slots (256 of 16384, evenly spaced), so a bucket uses every master
/// of a cluster of up to a few dozen.
pub const CLUSTER_GROUPS: usize = 256;

/// CRC16 (XMODEM), Redis Cluster's key hash.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of a key (its hash tag's, when it has one).
pub fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let close = key[open + 1..].iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &key[open + 1..open + 1 + close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS as u16
}

/// The hash tags of `groups` groups: the tag of group `g` is the smallest
/// decimal number whose slot falls in the `g`-th of `groups` equal ranges
/// of the slot space. Part of the on-store layout: never change it.
pub fn group_tags(groups: usize) -> Vec<String> {
    assert!((1..=SLOTS).contains(&groups));
    let mut tags: Vec<Option<String>> = vec![None; groups];
    let mut missing = groups;
    let mut n: u64 = 0;
    while missing > 0 {
        let tag = n.to_string();
        let group = usize::from(crc16(tag.as_bytes()) % SLOTS as u16) * groups / SLOTS;
        if tags[group].is_none() {
            tags[group] = Some(tag);
            missing -= 1;
        }
        n += 1;
    }
    tags.into_iter().map(Option::unwrap_or_default).collect()
}

/// One group of a bucket's keys: the keys, their version tokens and their
/// index entries share one hash slot (on a single server there is one group).
#[derive(Debug, Clone)]
pub struct Group {
    /// Prefix of the group's data keys: the bucket's prefix, then the hash
    /// tag `{T}` on a cluster.
    pub data_prefix: String,
    /// The group's version-token hash; also the channel its writes publish on.
    pub versions: Vec<u8>,
    /// The group's key index (sorted set).
    pub index: Vec<u8>,
}

impl Group {
    /// The Redis key of `key`'s value (a key of this group).
    pub fn data_key(&self, key: &str) -> String {
        format!("{}{key}", self.data_prefix)
    }
}

/// Where a bucket's keys and bookkeeping live.
///
/// * Single server: `prefix + key`, one version hash and one index for the
///   bucket.
/// * Redis Cluster: the key's group `g = crc16(key) mod 256`, data at
///   `prefix + "{" + T_g + "}" + key`, versions at `META v: prefix {T_g}`,
///   index at `META i: prefix {T_g}`, where `T_g` is the group's hash tag
///   ([`group_tags`]): everything a write touches is in one slot, and the
///   bucket's keys spread over 256 slots across the masters.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    groups: Vec<Group>,
}

impl Layout {
    /// The layout of a bucket on a single server.
    pub fn single(prefix: &str) -> Self {
        Layout {
            prefix: prefix.to_string(),
            groups: vec![Group {
                data_prefix: prefix.to_string(),
                versions: versions_key(prefix),
                index: index_key(prefix),
            }],
        }
    }

    /// The layout of a bucket on a Redis Cluster. `prefix` holds no `{`
    /// or `}` (checked by the provider's plan).
    pub fn cluster(prefix: &str) -> Self {
        let groups = group_tags(CLUSTER_GROUPS)
            .into_iter()
            .map(|tag| {
                let tagged = format!("{prefix}{{{tag}}}");
                Group {
                    versions: [META, b"v:", tagged.as_bytes()].concat(),
                    index: [META, b"i:", tagged.as_bytes()].concat(),
                    data_prefix: tagged,
                }
            })
            .collect();
        Layout {
            prefix: prefix.to_string(),
            groups,
        }
    }

    /// The bucket's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the bucket is on a cluster (more than one group).
    pub fn is_cluster(&self) -> bool {
        self.groups.len() > 1
    }

    /// The groups, in listing order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The number of the group of `key`.
    pub fn group_of(&self, key: &str) -> usize {
        match self.groups.len() {
            1 => 0,
            n => usize::from(crc16(key.as_bytes())) % n,
        }
    }

    /// The group of `key`.
    pub fn group(&self, key: &str) -> &Group {
        &self.groups[self.group_of(key)]
    }

    /// The Redis key of `key`'s value.
    pub fn data_key(&self, key: &str) -> String {
        self.group(key).data_key(key)
    }
}

/// A connection to a single server or to a cluster; both multiplexed and
/// reconnecting. The cluster connection routes each command by its keys'
/// slot, follows MOVED/ASK and refreshes the slot map.
#[derive(Clone)]
pub enum Connection {
    /// One server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection shared by every bucket on one server or cluster.
#[derive(Clone)]
pub struct RedisStore {
    /// The multiplexed connection (to the server, or to every master).
    pub conn: Connection,
    /// Clients of the server, or of the cluster's seed nodes, for the
    /// pub/sub connections of watches (tried in order).
    pub pubsub: Vec<redis::Client>,
}

// A key has a version token exactly when it is in the index: every write
// sets both, every delete (and a listing that meets a key gone from under
// it) removes both. So a write adds the index entry only when `HSET` says
// the token is new (a created key, or one another client wrote): one
// command less per overwrite.
//
// Every write script publishes its change on the bucket's versions key as a
// pub/sub channel: `s<len>:<key><value>` for a set, `d<len>:<key>` for a
// delete that removed a key (see `parse_change`).

// In a bucket with a `ttl` (the scripts made by [`Expiring::Yes`]), every
// write script takes two more ARGV at the end: the ttl in milliseconds and
// the bucket's data-key prefix. It writes with `PX ttl` (an increment sets
// `PEXPIRE`), and then samples two index members (`ZRANDMEMBER`) and drops
// those whose data key has expired, with their version tokens: each write
// removes expired entries in proportion to how many there are, so a bucket
// that is never listed keeps at most about as many expired index entries
// as live ones (Redis itself deletes the expired values).

/// Whether a bucket's keys expire: which variant of the write scripts it
/// runs. The placeholders `{px}`, `{keepttl}`, `{expire}` and `{sweep}`
/// in the templates below are filled by [`Expiring::script`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiring {
    /// No `ttl`: keys never expire.
    No,
    /// A `ttl` (the last two ARGV: ttl in ms, data-key prefix).
    Yes,
}

/// The sweep of a write script of an expiring bucket: `sweep(versions, index)`.
const SWEEP: &str = r"
local function sweep(versions, index)
  local prefix = ARGV[#ARGV]
  for _, member in ipairs(redis.call('ZRANDMEMBER', index, 2)) do
    if redis.call('EXISTS', prefix .. member) == 0 then
      redis.call('ZREM', index, member)
      redis.call('HDEL', versions, member)
    end
  end
end
";

impl Expiring {
    /// The script `template` for this variant.
    pub fn script(self, template: &str) -> Script {
        Script::new(&self.source(template))
    }

    /// The source of `template` for this variant.
    pub fn source(self, template: &str) -> String {
        let fills: [(&str, &str); 5] = match self {
            Expiring::No => [
                ("{px}", ""),
                ("{keepttl}", ""),
                ("{expire}", ""),
                ("{sweep}", ""),
                ("{sweep_many}", ""),
            ],
            Expiring::Yes => [
                ("{px}", ", 'PX', ARGV[#ARGV - 1]"),
                ("{keepttl}", ", 'KEEPTTL'"),
                (
                    "{expire}",
                    "redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV - 1])",
                ),
                // KEYS of a single-key write: data, versions, index; of
                // set-many: versions, index, data keys.
                ("{sweep}", "sweep(KEYS[2], KEYS[3])"),
                ("{sweep_many}", "sweep(KEYS[1], KEYS[2])"),
            ],
        };
        let mut source = template.to_string();
        if self == Expiring::Yes && (source.contains("{sweep}") || source.contains("{sweep_many}"))
        {
            source.insert_str(0, SWEEP);
        }
        for (placeholder, fill) in fills {
            source = source.replace(placeholder, fill);
        }
        source
    }
}

/// KEYS: data, versions, index. ARGV: key, value, new token.
pub const SET: &str = r"
redis.call('SET', KEYS[1], ARGV[2]{px})
if redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) == 1 then redis.call('ZADD', KEYS[3], 0, ARGV[1]) end
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
{sweep}
return 1
";

/// KEYS: data, versions, index. ARGV: key, value, new token.
pub const SET_IF_ABSENT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2]{px})
if redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) == 1 then redis.call('ZADD', KEYS[3], 0, ARGV[1]) end
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
{sweep}
return 1
";

/// The version of a present value: its token (empty when written by another
/// client) and the SHA-1 of its bytes.
const VERSION_OF: &str = r"
local function version_of(val)
  local token = redis.call('HGET', KEYS[2], ARGV[1]) or ''
  return token .. ':' .. redis.sha1hex(val)
end
";

/// KEYS: data, versions. ARGV: key. Returns nil or {value, version}.
pub fn get_versioned_script() -> Script {
    Script::new(&format!(
        "{VERSION_OF}
local val = redis.call('GET', KEYS[1])
if not val then return false end
return {{val, version_of(val)}}"
    ))
}

/// KEYS: data, versions, index. ARGV: key, value, new token, expected version.
pub fn set_if_version_script(expiring: Expiring) -> Script {
    expiring.script(&format!(
        "{VERSION_OF}
local val = redis.call('GET', KEYS[1])
if not val then return 0 end
if version_of(val) ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[1], ARGV[2]{{px}})
if redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) == 1 then redis.call('ZADD', KEYS[3], 0, ARGV[1]) end
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
{{sweep}}
return 1"
    ))
}

/// KEYS: data, versions, index. ARGV: key.
pub const DELETE: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('PUBLISH', KEYS[2], 'd' .. #ARGV[1] .. ':' .. ARGV[1])
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
";

/// `get-many` within a byte budget (`ARGV[1]`) over the data keys `KEYS`: the
/// values' sizes (`STRLEN`) are summed first, and a result over the budget
/// is an error reply (`WASIKV_TOO_LARGE <bytes so far>`), never sent.
pub const GET_MANY_WITHIN: &str = r"
local budget = tonumber(ARGV[1])
local total = 0
for i = 1, #KEYS do
  total = total + redis.call('STRLEN', KEYS[i])
  if total > budget then
    return redis.error_reply('WASIKV_TOO_LARGE ' .. total)
  end
end
return redis.call('MGET', unpack(KEYS))
";

/// KEYS: data, versions, index. ARGV: key, delta, new token.
///
/// Implements wasikv's counter rules on top of INCRBY: INCRBY first (it
/// accepts a subset of wasikv's counters, with the same result); when it
/// refuses, the stored text must match `-?[0-9]+`, and leading zeros (which
/// INCRBY refuses) are normalised and restored if INCRBY then fails (out of
/// range or overflow), so a failed increment never changes the value.
/// Returns the new value as text (Lua numbers are doubles; text keeps all
/// 64 bits).
pub const INCREMENT: &str = r"
local new = redis.pcall('INCRBY', KEYS[1], ARGV[2])
if type(new) == 'table' then
  -- Not INCRBY's form (leading zeros), not a number, or out of range.
  local val = redis.call('GET', KEYS[1])
  if not string.match(val, '^%-?%d+$') then
    return redis.error_reply('WASIKV_NOT_A_NUMBER')
  end
  local sign, digits = string.match(val, '^(%-?)(%d+)$')
  local trimmed = string.gsub(digits, '^0+', '')
  if trimmed == '' then trimmed = '0'; sign = '' end
  local canonical = sign .. trimmed
  if canonical ~= val then redis.call('SET', KEYS[1], canonical{keepttl}) end
  local ok = redis.pcall('INCRBY', KEYS[1], ARGV[2])
  if type(ok) == 'table' and ok.err then
    if canonical ~= val then redis.call('SET', KEYS[1], val{keepttl}) end
    return redis.error_reply('WASIKV_OUT_OF_RANGE ' .. ok.err)
  end
  new = ok
end
{expire}
if redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) == 1 then redis.call('ZADD', KEYS[3], 0, ARGV[1]) end
-- Lua numbers are doubles: exact text below 2^53, else read back.
if new > 9007199254740991 or new < -9007199254740991 then
  new = redis.call('GET', KEYS[1])
else
  new = string.format('%d', new)
end
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. new)
{sweep}
return new
";

/// KEYS: versions, index, then the data keys. ARGV: pairs of (key, value),
/// then one token per pair.
pub const SET_MANY: &str = r"
local n = #KEYS - 2
for i = 1, n do
  local key, value, token = ARGV[2 * i - 1], ARGV[2 * i], ARGV[2 * n + i]
  redis.call('SET', KEYS[i + 2], value{px})
  if redis.call('HSET', KEYS[1], key, token) == 1 then redis.call('ZADD', KEYS[2], 0, key) end
  redis.call('PUBLISH', KEYS[1], 's' .. #key .. ':' .. key .. value)
end
{sweep_many}
return n
";

/// KEYS: versions, index, then the data keys. ARGV: the keys.
pub const DELETE_MANY: &str = r"
local n = #KEYS - 2
for i = 1, n do
  if redis.call('DEL', KEYS[i + 2]) == 1 then
    redis.call('PUBLISH', KEYS[1], 'd' .. #ARGV[i] .. ':' .. ARGV[i])
  end
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return n
";

/// KEYS: index, versions. ARGV: data-key prefix, start ('-' or '(' .. last key), limit.
///
/// One page of the index in key order. Keys whose data is gone (deleted by
/// another client) are dropped from the index and skipped, and the page is
/// refilled, so a page is short only at the end. Returns {keys..., more_flag}.
pub const LIST: &str = r"
local limit = tonumber(ARGV[3])
local start = ARGV[2]
local keys = {}
while #keys < limit do
  local batch = redis.call('ZRANGE', KEYS[1], start, '+', 'BYLEX', 'LIMIT', 0, limit - #keys + 1)
  if #batch == 0 then return {keys, 0} end
  for i, member in ipairs(batch) do
    if #keys == limit then return {keys, 1} end
    if redis.call('EXISTS', ARGV[1] .. member) == 1 then
      keys[#keys + 1] = member
    else
      redis.call('ZREM', KEYS[1], member)
      redis.call('HDEL', KEYS[2], member)
    end
    start = '(' .. member
  end
end
local after = redis.call('ZRANGE', KEYS[1], start, '+', 'BYLEX', 'LIMIT', 0, 1)
if #after == 0 then return {keys, 0} end
return {keys, 1}
";

/// Makes rustls use *ring* for `rediss://` connections (once per process; a
/// provider another part of the process installed first is kept).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The one mapper from Redis errors to wasikv errors.
pub fn map_err(e: RedisError) -> Error {
    let text = e.to_string();
    if text.contains("WASIKV_NOT_A_NUMBER") {
        return Error::new(
            ErrorKind::InvalidValue,
            "cannot increment: the stored value is not a decimal integer (-?[0-9]+)",
        );
    }
    if text.contains("WASIKV_OUT_OF_RANGE") {
        return Error::new(
            ErrorKind::InvalidValue,
            "cannot increment: the value or the result does not fit in a signed 64-bit integer",
        );
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        return Error::new(ErrorKind::Unavailable, "redis is unreachable").with_source(e);
    }
    // A MULTI/EXEC the server discarded: the error of its first command
    // that failed says why (READONLY on a replica, say).
    let code = match e.kind() {
        redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort) => e
            .clone()
            .into_server_errors()
            .and_then(|errors| errors.first().map(|(_, first)| first.code().to_string())),
        _ => e.code().map(str::to_string),
    };
    // Temporary server states: the same call can succeed later.
    let temporary = match code.as_deref() {
        Some("LOADING") => Some("redis is loading its data set"),
        Some("BUSY") => Some("redis is busy running a script or function"),
        Some("TRYAGAIN") => Some("redis asks to try again (a slot is being migrated)"),
        Some("MASTERDOWN") => Some("redis lost its link to the master"),
        Some("CLUSTERDOWN") => Some("the redis cluster is down (a slot has no master)"),
        Some("READONLY") => {
            Some("redis is a read-only replica (a failover moved the master elsewhere?)")
        }
        Some("MOVED") | Some("ASK") => {
            Some("the redis cluster moved the key's slot (topology changing)")
        }
        _ => None,
    };
    if let Some(why) = temporary {
        return Error::new(ErrorKind::Unavailable, why)
            .set_retryable(true)
            .with_source(e);
    }
    if matches!(
        e.kind(),
        redis::ErrorKind::AuthenticationFailed
            | redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
    ) {
        return Error::new(
            ErrorKind::AccessDenied,
            "redis refused the credentials or command",
        )
        .with_source(e);
    }
    Error::new(ErrorKind::Other, "redis error").with_source(e)
}

/// A change published by the write scripts (`s<len>:<key><value>` or
/// `d<len>:<key>`); `None` for anything else.
pub fn parse_change(payload: &[u8]) -> Option<wasikv_core::Change> {
    let (&op, rest) = payload.split_first()?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let rest = &rest[colon + 1..];
    let key = String::from_utf8(rest.get(..len)?.to_vec()).ok()?;
    let value = &rest[len..];
    match op {
        b's' => Some(wasikv_core::Change::Set {
            key,
            value: value.to_vec(),
        }),
        b'd' if value.is_empty() => Some(wasikv_core::Change::Delete { key }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis Cluster's own examples: CRC16 of "123456789" and known slots.
    #[test]
    fn crc16_and_slots_match_redis() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        // A hash tag: only its content is hashed; `{}` is no tag.
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    /// Every group's tag lands in its own slot range, so a bucket's groups
    /// spread evenly over the slots (and so over the masters).
    #[test]
    fn group_tags_spread_over_the_slot_space() {
        for groups in [1, 3, 256, 16384] {
            let tags = group_tags(groups);
            assert_eq!(tags.len(), groups);
            for (g, tag) in tags.iter().enumerate() {
                let slot = usize::from(slot(tag.as_bytes()));
                assert_eq!(slot * groups / SLOTS, g, "tag {tag} of group {g}/{groups}");
            }
        }
        // The layout is stored data: these must never change.
        let tags = group_tags(CLUSTER_GROUPS);
        assert_eq!(&tags[..4], ["460", "14", "278", "10"]);
    }

    /// On a cluster a key's value, version and index entry share a slot;
    /// keys spread over the groups; keys with braces keep wasikv's tag.
    #[test]
    fn cluster_layout_keeps_a_keys_bookkeeping_in_its_slot() {
        let layout = Layout::cluster("app:");
        let mut used = std::collections::HashSet::new();
        for key in ["a", "b", "{x}", "}{", "{", "}", "user:{42}", "", "ключ"] {
            let g = layout.group(key);
            let data = layout.data_key(key);
            assert!(data.starts_with("app:{"), "{data}");
            assert_eq!(slot(data.as_bytes()), slot(&g.versions), "{key}");
            assert_eq!(slot(data.as_bytes()), slot(&g.index), "{key}");
        }
        for i in 0..10_000 {
            used.insert(layout.group_of(&format!("key-{i}")));
        }
        assert_eq!(used.len(), CLUSTER_GROUPS);
        let single = Layout::single("app:");
        assert_eq!(single.data_key("a"), "app:a");
        assert_eq!(single.group("a").versions, versions_key("app:"));
    }

    /// Temporary server states are `unavailable` and retryable; the rest are not.
    #[test]
    fn temporary_server_states_are_retryable() {
        for (reply, kind, retryable) in [
            (
                &b"-LOADING Redis is loading the dataset in memory\r\n"[..],
                ErrorKind::Unavailable,
                true,
            ),
            (
                b"-BUSY Redis is busy running a script.\r\n",
                ErrorKind::Unavailable,
                true,
            ),
            (
                b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
                ErrorKind::Unavailable,
                true,
            ),
            (
                b"-READONLY You can't write against a read only replica.\r\n",
                ErrorKind::Unavailable,
                true,
            ),
            (
                b"-MASTERDOWN Link with MASTER is down\r\n",
                ErrorKind::Unavailable,
                true,
            ),
            (
                b"-CLUSTERDOWN The cluster is down\r\n",
                ErrorKind::Unavailable,
                true,
            ),
            (b"-ERR syntax error\r\n", ErrorKind::Other, false),
        ] {
            let value = redis::parse_redis_value(reply).unwrap();
            let redis::Value::ServerError(server) = value else {
                panic!("{value:?}");
            };
            let e = map_err(server.into());
            assert_eq!(e.kind(), kind, "{e}");
            assert_eq!(e.is_retryable(), retryable, "{e}");
        }
    }
}
