//! Regression tests of issue 17's hardening items that are reachable through
//! the host's public API (the bucket layer guests call): each fails on the
//! code before its fix. `docs/reliability.md` lists every item and its test.

use wasikv_core::ErrorKind;
use wasikv_host::{Buckets, Config};

fn buckets(toml: &str) -> Buckets {
    Buckets::from_config(&Config::from_toml(toml).unwrap()).unwrap()
}

/// Item 10: a cursor the host issues is one it accepts. Keys of 10,000 bytes
/// make the memory provider's continuation token (the last key) longer than
/// a cursor may be; listing must still walk every key.
#[tokio::test]
async fn long_keys_give_cursors_the_host_accepts() {
    let b = buckets(
        "[limits]\nmax_key_bytes = 20000\nlist_page_keys = 1\n[buckets.m]\nprovider = \"memory\"\n",
    );
    let m = b.open(None, "m").await.unwrap();
    let keys: Vec<String> = (0..3)
        .map(|i| format!("{i}{}", "k".repeat(10_000)))
        .collect();
    for key in &keys {
        m.set(key.as_str(), b"v".to_vec()).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = m.list_keys(cursor.as_deref()).await.unwrap();
        seen.extend(page);
        match next {
            Some(c) => {
                assert!(c.len() <= 8192, "issued a {}-character cursor", c.len());
                cursor = Some(c);
            }
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, keys);
}

/// Item 4: the 0.2.0-draft `increment` (u64) refuses before writing: a
/// counter at -10 incremented by 5 stays -10.
#[tokio::test]
async fn draft_increment_refuses_before_writing() {
    let b = buckets("[buckets.m]\nprovider = \"memory\"\n");
    let m = b.open(None, "m").await.unwrap();
    m.set("n", b"-10".to_vec()).await.unwrap();
    let e = m.increment_unsigned("n", 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(m.get("n").await.unwrap().as_deref(), Some(&b"-10"[..]));
    assert_eq!(m.increment_unsigned("n", 15).await.unwrap(), 5);
    assert_eq!(m.increment_unsigned("new", 7).await.unwrap(), 7);
    let e = m.increment_unsigned("n", u64::MAX).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(m.get("n").await.unwrap().as_deref(), Some(&b"5"[..]));
}

/// Item 1: two spellings of one store, or one store reached with different
/// client settings, are one store to the overlap check.
#[test]
fn aliases_of_one_store_cannot_hold_overlapping_buckets() {
    let refused = |what: &str, a: &str, b: &str| {
        let toml = format!("[buckets.a]\n{a}\n[buckets.b]\n{b}\n");
        let err = Buckets::from_config(&Config::from_toml(&toml).unwrap())
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted\n{toml}"));
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{what}: {err}");
        assert!(
            err.to_string().contains("buckets \"a\" and \"b\" overlap"),
            "{what}: {err}"
        );
    };
    let accepted = |what: &str, a: &str, b: &str| {
        let toml = format!("[buckets.a]\n{a}\n[buckets.b]\n{b}\n");
        if let Err(e) = Buckets::from_config(&Config::from_toml(&toml).unwrap()) {
            panic!("{what}: {e}");
        }
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("x")).unwrap();
    let file = dir.path().join("a.redb");
    let alias = dir.path().join("x").join("..").join("a.redb");
    refused(
        "embedded: x/../a.redb is a.redb",
        &format!("provider = \"embedded\"\npath = {file:?}\ntable = \"t\""),
        &format!("provider = \"embedded\"\npath = {alias:?}\ntable = \"t\""),
    );
    #[cfg(feature = "redis")]
    {
        refused(
            "redis: localhost and 127.0.0.1/0",
            "provider = \"redis\"\nurl = \"redis://localhost:6379\"\nprefix = \"p:\"",
            "provider = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\nprefix = \"p:a:\"",
        );
        refused(
            "redis: default port, credentials",
            "provider = \"redis\"\nurl = \"redis://127.0.0.1\"\nprefix = \"p:\"",
            "provider = \"redis\"\nurl = \"redis://user:pw@127.0.0.1:6379/0\"\nprefix = \"p:\"",
        );
        accepted(
            "redis: another database index",
            "provider = \"redis\"\nurl = \"redis://localhost:6379\"\nprefix = \"p:\"",
            "provider = \"redis\"\nurl = \"redis://127.0.0.1:6379/1\"\nprefix = \"p:\"",
        );
    }
    #[cfg(feature = "memcached")]
    refused(
        "memcached: localhost and 127.0.0.1",
        "provider = \"memcached\"\naddress = \"localhost:11211\"\nprefix = \"p:\"",
        "provider = \"memcached\"\naddress = \"127.0.0.1:11211\"\nprefix = \"p:\"",
    );
    #[cfg(feature = "etcd")]
    {
        refused(
            "etcd: another user, another spelling",
            "provider = \"etcd\"\nendpoints = [\"http://localhost:2379\"]\nprefix = \"p/\"\nusername = \"u1\"\npassword = \"x\"",
            "provider = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\", \"http://127.0.0.1:22379\"]\nprefix = \"p/\"\nusername = \"u2\"\npassword = \"y\"",
        );
        accepted(
            "etcd: disjoint prefixes",
            "provider = \"etcd\"\nendpoints = [\"http://localhost:2379\"]\nprefix = \"p/\"",
            "provider = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nprefix = \"q/\"",
        );
    }
    #[cfg(feature = "dynamodb")]
    {
        let ddb = "provider = \"dynamodb\"\ntable = \"things\"\nregion = \"us-east-1\"\nendpoint = \"http://localhost:14566\"";
        refused(
            "dynamodb: max_attempts and credentials differ",
            &format!("{ddb}\nmax_attempts = 1"),
            "provider = \"dynamodb\"\ntable = \"things\"\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:14566\"\nmax_attempts = 5\naccess_key_id = \"k\"\nsecret_access_key = \"s\"",
        );
        accepted(
            "dynamodb: another table",
            ddb,
            "provider = \"dynamodb\"\ntable = \"others\"\nregion = \"us-east-1\"\nendpoint = \"http://localhost:14566\"",
        );
    }
    #[cfg(feature = "cosmos")]
    refused(
        "cosmos: primary and secondary key, timeouts",
        "provider = \"cosmos\"\nendpoint = \"https://localhost:8081\"\nkey = \"primary\"\ndatabase = \"d\"\ncontainer = \"c\"",
        "provider = \"cosmos\"\nendpoint = \"https://127.0.0.1:8081/\"\nkey = \"secondary\"\ndatabase = \"d\"\ncontainer = \"c\"\ntimeout_ms = 5",
    );
    #[cfg(feature = "postgres")]
    {
        refused(
            "postgres: localhost and 127.0.0.1, key=value form, pool settings",
            "provider = \"postgres\"\nurl = \"postgres://app@localhost/db\"\nprefix = \"p/\"",
            "provider = \"postgres\"\nurl = \"host=127.0.0.1 port=5432 user=other dbname=db\"\nprefix = \"p/a/\"\npool_size = 2",
        );
        refused(
            "postgres: the default table named",
            "provider = \"postgres\"\nurl = \"postgres://127.0.0.1/db\"\nprefix = \"\"",
            "provider = \"postgres\"\nurl = \"postgres://127.0.0.1/db\"\ntable = \"wasikv\"\nprefix = \"q/\"",
        );
        accepted(
            "postgres: another database, another table",
            "provider = \"postgres\"\nurl = \"postgres://127.0.0.1/db\"\nprefix = \"\"",
            "provider = \"postgres\"\nurl = \"postgres://127.0.0.1/db2\"\nprefix = \"\"",
        );
        accepted(
            "postgres: another table",
            "provider = \"postgres\"\nurl = \"postgres://127.0.0.1/db\"\nprefix = \"\"",
            "provider = \"postgres\"\nurl = \"postgres://127.0.0.1/db\"\ntable = \"kv.other\"\nprefix = \"\"",
        );
    }
    #[cfg(feature = "nats")]
    {
        refused(
            "nats: localhost and 127.0.0.1, credentials; a prefix inside the whole KV bucket",
            "provider = \"nats\"\nurl = \"nats://localhost:4222\"\nkv_bucket = \"kv\"",
            "provider = \"nats\"\nurl = \"nats://127.0.0.1\"\nkv_bucket = \"kv\"\nprefix = \"app\"\ntoken = \"t\"",
        );
        refused(
            "nats: a prefix token and its child",
            "provider = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nkv_bucket = \"kv\"\nprefix = \"app\"",
            "provider = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nkv_bucket = \"kv\"\nprefix = \"app.cache\"",
        );
        accepted(
            "nats: sibling prefixes that share letters",
            "provider = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nkv_bucket = \"kv\"\nprefix = \"app\"",
            "provider = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nkv_bucket = \"kv\"\nprefix = \"app2\"",
        );
        accepted(
            "nats: another KV bucket",
            "provider = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nkv_bucket = \"kv\"",
            "provider = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nkv_bucket = \"kv2\"",
        );
    }
    #[cfg(feature = "firestore")]
    refused(
        "firestore: timeouts, emulator spelling",
        "provider = \"firestore\"\nproject_id = \"p\"\ncollection = \"c\"\nemulator_host = \"localhost:8686\"",
        "provider = \"firestore\"\nproject_id = \"p\"\ncollection = \"c\"\nemulator_host = \"127.0.0.1:8686\"\ntimeout_ms = 5",
    );
}

/// Item 8: an etcd bucket may not take the whole cluster's keyspace.
#[cfg(feature = "etcd")]
#[test]
fn etcd_refuses_an_empty_prefix() {
    let toml = "[buckets.e]\nprovider = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nprefix = \"\"\n";
    let err = Buckets::from_config(&Config::from_toml(toml).unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("prefix is empty"), "{err}");
}
