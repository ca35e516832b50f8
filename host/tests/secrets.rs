//! No option value, secret or not, appears in a configuration error: a
//! number-like secret set through the environment (which figment reads as a
//! number, not a string) is reported by the option's name only.

use wasikv_host::{Buckets, Config};

/// A provider, one of its secret options, and the options it needs besides.
struct Case {
    provider: &'static str,
    secret: &'static str,
    others: &'static [(&'static str, &'static str)],
}

/// Each provider's secret options.
fn secret_options() -> Vec<Case> {
    #[allow(unused_mut)]
    let mut cases: Vec<Case> = Vec::new();
    #[cfg(feature = "redis")]
    cases.push(Case {
        provider: "redis",
        secret: "URL",
        others: &[("PREFIX", "p:")],
    });
    #[cfg(feature = "etcd")]
    {
        cases.push(Case {
            provider: "etcd",
            secret: "PASSWORD",
            others: &[("ENDPOINTS", "[\"http://127.0.0.1:2379\"]")],
        });
        cases.push(Case {
            provider: "etcd",
            secret: "USERNAME",
            others: &[("ENDPOINTS", "[\"http://127.0.0.1:2379\"]")],
        });
    }
    #[cfg(feature = "dynamodb")]
    for secret in ["SECRET_ACCESS_KEY", "ACCESS_KEY_ID", "SESSION_TOKEN"] {
        cases.push(Case {
            provider: "dynamodb",
            secret,
            others: &[("TABLE", "table1")],
        });
    }
    #[cfg(feature = "cosmos")]
    cases.push(Case {
        provider: "cosmos",
        secret: "KEY",
        others: &[("ENDPOINT", "https://127.0.0.1:8081"), ("DATABASE", "d")],
    });
    #[cfg(feature = "postgres")]
    {
        cases.push(Case {
            provider: "postgres",
            secret: "URL",
            others: &[],
        });
        cases.push(Case {
            provider: "postgres",
            secret: "PASSWORD",
            others: &[("URL", "postgres://127.0.0.1/db")],
        });
    }
    #[cfg(feature = "nats")]
    {
        cases.push(Case {
            provider: "nats",
            secret: "PASSWORD",
            others: &[
                ("URL", "nats://127.0.0.1:4222"),
                ("USER", "u"),
                ("KV_BUCKET", "kv"),
            ],
        });
        for secret in ["TOKEN", "NKEY"] {
            cases.push(Case {
                provider: "nats",
                secret,
                others: &[("URL", "nats://127.0.0.1:4222"), ("KV_BUCKET", "kv")],
            });
        }
    }
    cases
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure returns figment's error
fn number_like_secrets_from_the_environment_never_appear_in_errors() {
    let cases = secret_options();
    #[cfg(all(
        feature = "redis",
        feature = "etcd",
        feature = "dynamodb",
        feature = "cosmos",
        feature = "postgres",
        feature = "nats"
    ))]
    assert_eq!(
        cases.len(),
        12,
        "every provider's secret options are covered"
    );
    for Case {
        provider,
        secret,
        others,
    } in cases
    {
        for value in ["987654321", "-987654321", "98765.4321", "true"] {
            figment::Jail::expect_with(|jail| {
                jail.set_env("WASIKV_BUCKETS__S__PROVIDER", provider);
                jail.set_env(format!("WASIKV_BUCKETS__S__{secret}"), value);
                for (option, v) in others {
                    jail.set_env(format!("WASIKV_BUCKETS__S__{option}"), v);
                }
                let config = Config::load(None).map_err(|e| e.to_string())?;
                let Err(e) = Buckets::from_config(&config) else {
                    panic!("{provider}: a non-string {secret} was accepted");
                };
                let text = e.to_string();
                let digits = value.trim_start_matches('-');
                assert!(
                    !text.contains(digits) && !text.contains(value),
                    "{provider}.{secret} = {value} leaked: {text}"
                );
                assert!(
                    text.contains(&format!("option `{}`", secret.to_ascii_lowercase())),
                    "{provider}: the error names the option: {text}"
                );
                Ok(())
            });
        }
    }
}

/// A number-like secret is set as a string by quoting it in the variable's
/// value, as `docs/configuration.md` says.
#[cfg(feature = "dynamodb")]
#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure returns figment's error
fn a_quoted_number_like_secret_is_a_string() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("WASIKV_BUCKETS__S__PROVIDER", "dynamodb");
        jail.set_env("WASIKV_BUCKETS__S__TABLE", "table1");
        jail.set_env("WASIKV_BUCKETS__S__ACCESS_KEY_ID", "\"123\"");
        jail.set_env("WASIKV_BUCKETS__S__SECRET_ACCESS_KEY", "\"987654321\"");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        Buckets::from_config(&config).map_err(|e| e.to_string())?;
        Ok(())
    });
}
