//! The connection, the server-side scripts, key layout and the one mapper
//! from Redis errors to wasikv errors.

use redis::aio::ConnectionManager;
use redis::{RedisError, Script};
use wasikv_core::{Error, ErrorKind};

/// Start of every key wasikv keeps beside the data: `0xFF` cannot start a
/// UTF-8 string, so no bucket key can collide with it.
pub const META: &[u8] = b"\xffwasikv\xff";

/// The version-token hash of a bucket.
pub fn versions_key(prefix: &str) -> Vec<u8> {
    [META, b"v:", prefix.as_bytes()].concat()
}

/// The key index (sorted set) of a bucket.
pub fn index_key(prefix: &str) -> Vec<u8> {
    [META, b"i:", prefix.as_bytes()].concat()
}

/// A connection shared by every bucket on one URL (multiplexed, reconnecting).
#[derive(Clone)]
pub struct RedisStore {
    /// The multiplexed connection.
    pub conn: ConnectionManager,
    /// The client, for the pub/sub connections of watches.
    pub client: redis::Client,
}

// Every write script publishes its change on the bucket's versions key as a
// pub/sub channel: `s<len>:<key><value>` for a set, `d<len>:<key>` for a
// delete that removed a key (see `parse_change`).

/// KEYS: data, versions, index. ARGV: key, value, new token.
pub const SET: &str = r"
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
return 1
";

/// KEYS: data, versions, index. ARGV: key, value, new token.
pub const SET_IF_ABSENT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
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
pub fn set_if_version_script() -> Script {
    Script::new(&format!(
        "{VERSION_OF}
local val = redis.call('GET', KEYS[1])
if not val then return 0 end
if version_of(val) ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
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
  if canonical ~= val then redis.call('SET', KEYS[1], canonical) end
  local ok = redis.pcall('INCRBY', KEYS[1], ARGV[2])
  if type(ok) == 'table' and ok.err then
    if canonical ~= val then redis.call('SET', KEYS[1], val) end
    return redis.error_reply('WASIKV_OUT_OF_RANGE ' .. ok.err)
  end
  new = ok
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
-- Lua numbers are doubles: exact text below 2^53, else read back.
if new > 9007199254740991 or new < -9007199254740991 then
  new = redis.call('GET', KEYS[1])
else
  new = string.format('%d', new)
end
redis.call('PUBLISH', KEYS[2], 's' .. #ARGV[1] .. ':' .. ARGV[1] .. new)
return new
";

/// KEYS: versions, index, then the data keys. ARGV: pairs of (key, value),
/// then one token per pair.
pub const SET_MANY: &str = r"
local n = #KEYS - 2
for i = 1, n do
  local key, value, token = ARGV[2 * i - 1], ARGV[2 * i], ARGV[2 * n + i]
  redis.call('SET', KEYS[i + 2], value)
  redis.call('HSET', KEYS[1], key, token)
  redis.call('ZADD', KEYS[2], 0, key)
  redis.call('PUBLISH', KEYS[1], 's' .. #key .. ':' .. key .. value)
end
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
        Some("CLUSTERDOWN") => Some("the redis cluster is down"),
        Some("READONLY") => {
            Some("redis is a read-only replica (a failover moved the master elsewhere?)")
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
