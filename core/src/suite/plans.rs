//! Checks of a provider's `plan` (no server needed).

use crate::{ErrorKind, Options, Provider};

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
