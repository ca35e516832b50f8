//! Plans (no emulator needed): bad options are refused naming the bucket and
//! provider, and buckets overlap only on the same collection under the same
//! parent.

use wasikv_core::{Options, Provider};
use wasikv_firestore::FirestoreProvider;

fn plan(bucket: &str, options: serde_json::Value) -> wasikv_core::Result<wasikv_core::BucketPlan> {
    FirestoreProvider.plan(bucket, &Options::from_json(options).unwrap())
}

#[test]
fn bad_options_are_refused_naming_the_bucket() {
    let bad = [
        (serde_json::json!({"project_id": ""}), "project_id"),
        (
            serde_json::json!({"project_id": "p", "collection": "a/b"}),
            "collection",
        ),
        (
            serde_json::json!({"project_id": "p", "collection": "__x__"}),
            "collection",
        ),
        (
            serde_json::json!({"project_id": "p", "collection": ".."}),
            "collection",
        ),
        (
            serde_json::json!({"project_id": "p", "parent": "tenants"}),
            "parent",
        ),
        (
            serde_json::json!({"project_id": "p", "parent": "tenants//x"}),
            "parent",
        ),
        (
            serde_json::json!({"project_id": "p", "colection": "x"}),
            "colection",
        ),
    ];
    wasikv_core::suite::plans::assert_plans_refused(&FirestoreProvider, &bad);
}

#[test]
fn namespaces_overlap_only_on_the_same_collection_and_parent() {
    let ns = |bucket: &str, options: serde_json::Value| plan(bucket, options).unwrap().namespace;
    let a = ns("a", serde_json::json!({"project_id": "p"}));
    assert!(a.overlaps(&ns(
        "b",
        serde_json::json!({"project_id": "p", "collection": "a"})
    )));
    assert!(!a.overlaps(&ns("b", serde_json::json!({"project_id": "p"}))));
    assert!(!a.overlaps(&ns(
        "a",
        serde_json::json!({"project_id": "p", "parent": "tenants/acme"})
    )));
}
