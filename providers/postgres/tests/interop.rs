//! PostgreSQL specifics: rows other clients write through plain SQL are
//! read, listed, counted and seen by CAS; a table without wasikv's columns,
//! or a missing one without `create`, fails when the bucket opens, naming it.

use std::sync::Arc;

use wasikv_core::{Bucket, ErrorKind, Options, Provider, WriteCondition, WriteOutcome};
use wasikv_postgres::PostgresProvider;
use wasikv_postgres::testing::{TEST_TABLE, test_url};

/// A bucket on a fresh prefix of the test table, and a plain client.
async fn bucket() -> (Arc<dyn Bucket>, tokio_postgres::Client, Vec<u8>) {
    let prefix = format!("wasikv-test/interop-{:08x}/", rand::random::<u32>());
    let bucket = open(serde_json::json!({
        "url": test_url(), "table": TEST_TABLE, "prefix": prefix, "create": true,
    }))
    .await
    .expect("postgres at WASIKV_TEST_POSTGRES_URL");
    (bucket, plain().await, prefix.into_bytes())
}

async fn open(options: serde_json::Value) -> wasikv_core::Result<Arc<dyn Bucket>> {
    wasikv_core::suite::plans::open(&PostgresProvider, "interop", options).await
}

async fn plain() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&test_url(), tokio_postgres::NoTls)
        .await
        .expect("plain client");
    tokio::spawn(connection);
    client
}

fn key(prefix: &[u8], k: &str) -> Vec<u8> {
    [prefix, k.as_bytes()].concat()
}

#[tokio::test]
async fn rows_written_with_plain_sql_are_read_listed_and_counted() {
    let (b, sql, prefix) = bucket().await;
    let insert = format!("INSERT INTO {TEST_TABLE} (key, value) VALUES ($1, $2)");
    // No version given: the column's default makes one.
    for (k, v) in [("a", &b"from sql"[..]), ("n", b"41")] {
        sql.execute(&insert, &[&key(&prefix, k), &v]).await.unwrap();
    }
    // A key that is not UTF-8 under the prefix is not wasikv's: not listed.
    sql.execute(
        &insert,
        &[&[prefix.as_slice(), b"\xff"].concat(), &&b"x"[..]],
    )
    .await
    .unwrap();
    assert_eq!(b.get("a").await.unwrap(), Some(b"from sql".to_vec()));
    assert_eq!(b.increment("n", 1).await.unwrap(), 42);
    let keys = wasikv_core::suite::list_all(&*b, 1).await.unwrap();
    assert_eq!(keys, ["a", "n"]);
    sql.execute(
        &format!("DELETE FROM {TEST_TABLE} WHERE key = $1"),
        &[&[prefix.as_slice(), b"\xff"].concat()],
    )
    .await
    .unwrap();
    wasikv_core::suite::cleanup(&*b).await;
}

/// A plain `UPDATE` that does not touch `version`, even one writing the
/// same bytes, gets a new version from the table's trigger: a pending swap
/// fails, and a fresh read swaps.
#[tokio::test]
async fn plain_updates_make_pending_swaps_fail() {
    let (b, sql, prefix) = bucket().await;
    let update = format!("UPDATE {TEST_TABLE} SET value = $2 WHERE key = $1");
    b.set("k", b"v1".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    for value in [&b"v2"[..], b"v2"] {
        let read = b.get_versioned("k").await.unwrap().unwrap();
        sql.execute(&update, &[&key(&prefix, "k"), &value])
            .await
            .unwrap();
        let outcome = b
            .set(
                "k",
                b"mine".to_vec(),
                WriteCondition::IfVersion(read.version),
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            WriteOutcome::ConditionFailed,
            "after writing {value:?}"
        );
    }
    let fresh = b.get_versioned("k").await.unwrap().unwrap();
    assert_eq!(fresh.value, b"v2");
    let outcome = b
        .set(
            "k",
            b"mine".to_vec(),
            WriteCondition::IfVersion(fresh.version),
        )
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Written);
    wasikv_core::suite::cleanup(&*b).await;
}

#[tokio::test]
async fn tables_that_are_not_wasikvs_fail_when_the_bucket_opens() {
    let sql = plain().await;
    let missing = format!("wasikv_missing_{:08x}", rand::random::<u32>());
    let err = open(serde_json::json!({ "url": test_url(), "table": missing }))
        .await
        .err()
        .expect("a missing table without create");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(
        err.to_string().contains(&missing) && err.to_string().contains("create = true"),
        "{err}"
    );

    let other = format!("wasikv_other_{:08x}", rand::random::<u32>());
    sql.batch_execute(&format!(
        "CREATE TABLE {other} (k text PRIMARY KEY, v text)"
    ))
    .await
    .unwrap();
    let err = open(serde_json::json!({ "url": test_url(), "table": other }))
        .await
        .err()
        .expect("a table with other columns");
    sql.batch_execute(&format!("DROP TABLE {other}"))
        .await
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("wasikv's columns"), "{err}");

    let err = PostgresProvider
        .plan(
            "b",
            &Options::from_json(
                serde_json::json!({ "url": test_url(), "table": "x; DROP TABLE y" }),
            )
            .unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("bucket \"b\" (postgres)"), "{err}");
}

/// Keys past what a B-tree index entry holds are refused naming the limit,
/// and nothing is written; a key at the limit works.
#[tokio::test]
async fn keys_past_the_index_limit_are_too_large() {
    let (b, _sql, _prefix) = bucket().await;
    let max = b.capabilities().max_key_bytes.unwrap();
    let at = "k".repeat(max);
    b.set(&at, b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(b.get(&at).await.unwrap(), Some(b"v".to_vec()));
    let over = "k".repeat(max + 1);
    let err = b
        .set(&over, b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert!(err.to_string().contains(&max.to_string()), "{err}");
    wasikv_core::suite::cleanup(&*b).await;
}

/// `get-many` within a byte budget is one statement: the server sums the
/// sizes of the values it found (once per requested position) and sends
/// them only when they fit; over the budget is `too-large`.
#[tokio::test]
async fn get_many_within_a_budget_is_checked_by_the_server() {
    let (b, _sql, _prefix) = bucket().await;
    assert!(b.capabilities().budgeted_get_many);
    b.set("a", vec![b'a'; 100], WriteCondition::Always)
        .await
        .unwrap();
    b.set("b", vec![b'b'; 50], WriteCondition::Always)
        .await
        .unwrap();
    let keys: Vec<String> = ["a", "missing", "b", "a"].map(String::from).to_vec();
    let got = b.get_many_within(&keys, 250).await.unwrap();
    assert_eq!(
        got,
        vec![
            Some(vec![b'a'; 100]),
            None,
            Some(vec![b'b'; 50]),
            Some(vec![b'a'; 100])
        ]
    );
    let err = b.get_many_within(&keys, 249).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert!(err.to_string().contains("250"), "{err}");
    assert_eq!(
        b.get_many_within(&["missing".to_string()], 0)
            .await
            .unwrap(),
        vec![None]
    );
    wasikv_core::suite::cleanup(&*b).await;
}

/// An unreachable server is `unavailable` at connect, saying why, and the
/// password of the url is not in the message.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_without_the_password() {
    let err = open(serde_json::json!({
        "url": "postgres://app:s3cretpw@127.0.0.1:1/db", "connect_timeout_ms": 1000,
    }))
    .await
    .err()
    .expect("nothing listens on port 1");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cannot reach PostgreSQL") && text.contains("refused"),
        "{text}"
    );
    assert!(!text.contains("s3cretpw"), "{text}");
}

/// `statement_timeout_ms` bounds a statement on the server: a write
/// waiting on a row another client holds locked fails as retryable
/// `unavailable` (SQLSTATE 57014) after the timeout, and nothing changed.
#[tokio::test]
async fn statement_timeout_bounds_a_blocked_write() {
    let prefix = format!("wasikv-test/timeout-{:08x}/", rand::random::<u32>());
    let b = open(serde_json::json!({
        "url": test_url(), "table": TEST_TABLE, "prefix": prefix, "create": true,
        "statement_timeout_ms": 300,
    }))
    .await
    .unwrap();
    b.set("k", b"v1".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let sql = plain().await;
    sql.batch_execute("BEGIN").await.unwrap();
    sql.execute(
        &format!("SELECT 1 FROM {TEST_TABLE} WHERE key = $1 FOR UPDATE"),
        &[&key(prefix.as_bytes(), "k")],
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let err = b
        .set("k", b"v2".to_vec(), WriteCondition::Always)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    sql.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.is_retryable() && err.to_string().contains("57014"),
        "{err}"
    );
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(b.get("k").await.unwrap(), Some(b"v1".to_vec()));
    wasikv_core::suite::cleanup(&*b).await;
}
