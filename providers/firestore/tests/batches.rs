//! Batches larger than one commit request, against the emulator of
//! `scripts/services.sh`: set-many splits its writes by encoded size, and
//! every value comes back.

#[tokio::test(flavor = "multi_thread")]
async fn set_many_over_one_commit_request_is_split_by_size() {
    let open = wasikv_firestore::testing::opener();
    let bucket = open(wasikv_core::OpenRequest {
        namespace: format!("batches-{:08x}", rand::random::<u32>()),
        ttl: None,
    })
    .await
    .expect("emulator");
    // 12 values of ~1 MB: more than Firestore's 10 MiB per request.
    let items: Vec<(String, Vec<u8>)> = (0..12u8)
        .map(|i| (format!("big-{i:02}"), vec![i; 1_000_000]))
        .collect();
    bucket.set_many(items.clone()).await.expect("set-many");
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    let got = bucket.get_many(&keys).await.expect("get-many");
    for ((key, value), got) in items.iter().zip(&got) {
        assert_eq!(got.as_deref(), Some(value.as_slice()), "{key}");
    }
    bucket.delete_many(&keys).await.expect("delete-many");
    assert!(
        bucket
            .get_many(&keys)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
}
