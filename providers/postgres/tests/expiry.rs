//! PostgreSQL expiry specifics: a table made before wasikv kept expiry
//! serves buckets without a ttl as before, refuses a ttl without `create`
//! (naming the column) and is given the column with it; the background
//! sweep deletes expired rows and only those.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use wasikv_core::{Bucket, ErrorKind, Expiry, WriteCondition};
use wasikv_postgres::PostgresProvider;
use wasikv_postgres::testing::{TEST_TABLE, test_url};

async fn open(options: serde_json::Value) -> wasikv_core::Result<Arc<dyn Bucket>> {
    wasikv_core::suite::plans::open(&PostgresProvider, "expiring", options).await
}

async fn plain() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&test_url(), tokio_postgres::NoTls)
        .await
        .expect("postgres at WASIKV_TEST_POSTGRES_URL");
    tokio::spawn(connection);
    client
}

async fn count(sql: &tokio_postgres::Client, table: &str, prefix: &str) -> i64 {
    sql.query_one(
        &format!("SELECT count(*) FROM {table} WHERE substring(key FROM 1 FOR $2) = $1"),
        &[&prefix.as_bytes(), &(prefix.len() as i32)],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn a_table_without_the_expiry_column_gets_it_only_with_create() {
    let sql = plain().await;
    let table = format!("wasikv_old_{:08x}", rand::random::<u32>());
    // The definition wasikv made before it kept expiry.
    sql.batch_execute(&format!(
        "CREATE TABLE {table} (key bytea PRIMARY KEY, value bytea NOT NULL, \
         version bytea NOT NULL DEFAULT uuid_send(gen_random_uuid()))"
    ))
    .await
    .unwrap();
    let options = |ttl: Option<&str>, create: bool| {
        let mut o = serde_json::json!({
            "url": test_url(), "table": table, "prefix": "p/", "create": create,
        });
        if let Some(ttl) = ttl {
            o["ttl"] = ttl.into();
        }
        o
    };
    let result = std::panic::AssertUnwindSafe(async {
        // Without a ttl the old table serves as before, and says it cannot expire.
        let plain_bucket = open(options(None, false)).await.unwrap();
        assert_eq!(plain_bucket.capabilities().expiry, Expiry::Unsupported);
        plain_bucket
            .set("old", b"1".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
        let err = open(options(Some("1h"), false))
            .await
            .err()
            .expect("a ttl on a table without expires_at");
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
        assert!(
            err.to_string().contains(&table)
                && err.to_string().contains("expires_at")
                && err.to_string().contains("create = true"),
            "{err}"
        );
        let expiring = open(options(Some("1h"), true)).await.unwrap();
        assert!(expiring.capabilities().expiry.is_supported());
        // The bucket opened before the column was added still works, and
        // its rows (NULL expiry) never expire.
        assert_eq!(plain_bucket.increment("old", 1).await.unwrap(), 2);
        assert_eq!(expiring.get("old").await.unwrap(), Some(b"2".to_vec()));
        let indexed: bool = sql
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expires_at)%')",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert!(indexed, "no index on expires_at");
    })
    .catch_unwind()
    .await;
    sql.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn the_sweep_deletes_expired_rows_and_only_those() {
    let sql = plain().await;
    let id = rand::random::<u32>();
    let (short, lasting) = (
        format!("wasikv-test/sweep-{id:08x}/"),
        format!("wasikv-test/sweep-{id:08x}-kept/"),
    );
    let bucket = |prefix: &str, ttl: Option<&str>| {
        let mut o = serde_json::json!({
            "url": test_url(), "table": TEST_TABLE, "prefix": prefix, "create": true,
        });
        if let Some(ttl) = ttl {
            o["ttl"] = ttl.into();
        }
        open(o)
    };
    let expiring = bucket(&short, Some("1s")).await.unwrap();
    let kept = bucket(&lasting, None).await.unwrap();
    let items: Vec<(String, Vec<u8>)> = (0..50).map(|i| (format!("k{i}"), vec![1])).collect();
    expiring.set_many(items.clone()).await.unwrap();
    kept.set_many(items).await.unwrap();
    assert_eq!(count(&sql, TEST_TABLE, &short).await, 50);
    // Past the ttl the rows are absent at once, and deleted within a sweep
    // interval or two.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(expiring.get("k0").await.unwrap(), None);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count(&sql, TEST_TABLE, &short).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "expired rows still stored 5 s after the ttl"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&sql, TEST_TABLE, &lasting).await, 50);
    assert_eq!(kept.get("k0").await.unwrap(), Some(vec![1]));
    wasikv_core::suite::cleanup(&*kept).await;
}
