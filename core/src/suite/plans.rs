//! Checks of a provider's `plan` (no server needed), and opening a bucket
//! from options as the host does.

use std::sync::Arc;

use crate::{Bucket, ErrorKind, Options, Provider};

/// Opens bucket `bucket` of `provider` from its config section `options`
/// (a JSON object) as the host does: plan, connect, open.
pub async fn open(
    provider: &dyn Provider,
    bucket: &str,
    options: serde_json::Value,
) -> crate::Result<Arc<dyn Bucket>> {
    let plan = crate::expiry::plan(provider, bucket, &Options::from_json(options)?)?;
    let store = provider.connect(&plan).await?;
    store.open_bucket(&plan).await
}

/// Asserts that `provider` refuses each set of `bad` options for the bucket
/// `things` with `invalid-config`, and that the error names the bucket, the
/// provider and the given word (the offending option).
pub fn assert_plans_refused(provider: &dyn Provider, bad: &[(serde_json::Value, &str)]) {
    for (options, needle) in bad {
        let parsed = Options::from_json(options.clone()).expect("options are a JSON object");
        let err = provider
            .plan("things", &parsed)
            .err()
            .unwrap_or_else(|| panic!("{options} accepted"));
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let text = err.to_string();
        assert!(text.contains(needle), "{options}: {text}");
        assert!(
            text.contains(&format!("\"things\" ({})", provider.name())),
            "{text}"
        );
    }
}
