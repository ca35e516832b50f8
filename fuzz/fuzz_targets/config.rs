//! Configuration: any TOML text (and any values in it) is accepted or
//! refused with an `invalid-config` error, never a panic; an accepted one
//! has its defaults and passes its own checks again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasikv_core::ErrorKind;
use wasikv_fuzz::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            assert!(config.buckets.contains_key("default"));
            let _ = config.unlisted_policy();
            for name in config.components.keys() {
                assert!(config.component(name).is_some());
            }
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}"),
    }
});
