//! The host's configuration: `wasikv.toml` (or `--config FILE`) merged with
//! `WASIKV_` environment variables, where `__` separates nesting levels
//! (`WASIKV_BUCKETS__CACHE__URL` sets `buckets.cache.url`).
//!
//! See `docs/configuration.md` for every key with a full example.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use wasikv_core::{Error, ErrorKind, Result};

/// The default configuration file, looked up in the working directory.
pub const DEFAULT_FILE: &str = "wasikv.toml";

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Buckets by identifier (what guests pass to `store.open`).
    #[serde(default)]
    pub buckets: BTreeMap<String, BucketConfig>,
    /// Per-component allow-lists, by component name (the file stem, or
    /// `--name`). Names are matched ignoring ASCII case, because environment
    /// variables (`WASIKV_COMPONENTS__NAME__BUCKETS`) cannot carry it.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentConfig>,
    /// What components without a `[components.NAME]` section may open.
    #[serde(default)]
    pub access: AccessConfig,
    /// Limits on what one guest call may do.
    #[serde(default)]
    pub limits: Limits,
    /// Places and guest resource limits.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// `wasikv serve`: listeners and the limits that protect the server.
    #[serde(default)]
    pub serve: ServeConfig,
}

/// One bucket: its provider and the provider's options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketConfig {
    /// The provider name, e.g. `embedded`, `memory`, `redis`.
    pub provider: String,
    /// Everything else in the section, validated by the provider.
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// What one component may open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// The buckets this component may open; any other gets `access-denied`.
    pub buckets: Vec<String>,
}

/// `[access]`: the policy for components that have no `[components.NAME]`
/// section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// `"allow"` (every configured bucket) or `"deny"` (none). Unset: deny
    /// as soon as any `[components.NAME]` section exists (so renaming a
    /// component never escapes its allow-list), allow while none does (the
    /// zero-config `wasikv run app.wasm`); `wasikv serve` sets `"deny"`
    /// when unset. See [`Config::unlisted_policy`].
    pub unlisted: Option<Unlisted>,
}

/// Access of a component without a `[components.NAME]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlisted {
    /// It may open every configured bucket.
    Allow,
    /// It may open none (`access-denied`).
    Deny,
}

impl Unlisted {
    /// As written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Unlisted::Allow => "allow",
            Unlisted::Deny => "deny",
        }
    }
}

/// Limits on guest calls. Each violation is a clear error naming the limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest key in bytes (every provider takes at least 1024).
    pub max_key_bytes: usize,
    /// Largest value in bytes (a provider's own smaller limit applies too).
    pub max_value_bytes: usize,
    /// Most keys in one `get-many`, `set-many` or `delete-many`.
    pub max_batch_keys: usize,
    /// Most bytes one call may gather for the guest (e.g. a `get-many` result).
    pub max_call_bytes: usize,
    /// Keys per `list-keys` page.
    pub list_page_keys: usize,
    /// Concurrent single operations when the host emulates a batch.
    pub batch_concurrency: usize,
    /// Attempts an emulated `increment` makes under contention before giving up.
    pub increment_attempts: u32,
    /// Timeout of one store operation, in milliseconds (0: none).
    pub operation_timeout_ms: u64,
    /// Retries of a read (get, exists, a CAS handle's read, get-many,
    /// list-keys) that failed with a retryable `unavailable` error (store
    /// unreachable or timed out), with full-jitter backoff from
    /// `read_retry_backoff_ms` doubling up to 1 s; each attempt has its own
    /// `operation_timeout_ms`. Writes are never retried by the host.
    pub read_retries: u32,
    /// First backoff of a read retry, in milliseconds.
    pub read_retry_backoff_ms: u64,
    /// Changes queued per bucket for a watcher of a store without a change
    /// feed (host-local notifications); a watcher further behind loses the
    /// oldest, with a warning giving their count.
    pub watch_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 16 << 20,
            max_batch_keys: 1000,
            max_call_bytes: 64 << 20,
            list_page_keys: 1000,
            batch_concurrency: 16,
            increment_attempts: 100,
            operation_timeout_ms: 30_000,
            read_retries: 2,
            read_retry_backoff_ms: 50,
            watch_queue: 1024,
        }
    }
}

/// Places and guest resource limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Where the default bucket keeps its file (`default.redb`). Default: `.wasikv`.
    pub data_dir: PathBuf,
    /// Where compiled components are cached. Default: the platform cache
    /// directory + `wasikv/components` (e.g. `~/.cache/wasikv/components`).
    pub cache_dir: Option<PathBuf>,
    /// Cache compiled components.
    pub cache: bool,
    /// Most linear memory a guest instance may have, in bytes.
    pub max_memory_bytes: usize,
    /// Instances the pooling allocator keeps ready (0: allocate each instance's
    /// memory on demand). With a pool, instantiation maps no new memory; more
    /// concurrent instances than this fail to instantiate.
    pub pooling_instances: u32,
    /// Wall-clock budget of one component run in milliseconds (0: none).
    /// Enforced by epoch interruption in guest code and by a timeout around
    /// host calls.
    pub deadline_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            data_dir: PathBuf::from(".wasikv"),
            cache_dir: None,
            cache: true,
            max_memory_bytes: 512 << 20,
            pooling_instances: 0,
            deadline_ms: 0,
        }
    }
}

/// `wasikv serve`: where it listens and the limits that protect the host
/// from its HTTP component (see `docs/serve.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// The HTTP listener.
    pub listen: SocketAddr,
    /// The admin listener (`/healthz`, `/metrics`); off when unset.
    pub admin: Option<SocketAddr>,
    /// Requests handled at once; beyond it a request is answered 503 with
    /// `Retry-After` at once (never queued). Each holds one instance.
    pub max_concurrent_requests: usize,
    /// Wall-clock budget of one request in milliseconds, from instantiation
    /// to the last byte of the response body; a guest past it is stopped and
    /// the request answered 504 (or cut, once the response has started).
    pub request_timeout_ms: u64,
    /// Largest request body in bytes: a larger `Content-Length` is answered
    /// 413 before the guest runs; a streamed body that grows past it fails
    /// the guest's read, and the request is answered 413.
    pub max_request_body_bytes: u64,
    /// After SIGINT/SIGTERM (Ctrl-C/Ctrl-Break on Windows), how long
    /// in-flight requests may take to finish before the server exits anyway.
    pub drain_timeout_ms: u64,
    /// Whether guests may send outgoing HTTP requests
    /// (`wasi:http/outgoing-handler`); refused with `HTTP-request-denied`
    /// unless enabled.
    pub outgoing_http: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin: None,
            max_concurrent_requests: 128,
            request_timeout_ms: 30_000,
            max_request_body_bytes: 16 << 20,
            drain_timeout_ms: 30_000,
            outgoing_http: false,
        }
    }
}

impl ServeConfig {
    /// Refuses limits a server cannot work with (checked at load, and again
    /// by [`ServeConfig::runtime`] after flags override the file).
    pub fn check(&self) -> Result<()> {
        for (name, value) in [
            (
                "max_concurrent_requests",
                self.max_concurrent_requests as u64,
            ),
            ("request_timeout_ms", self.request_timeout_ms),
        ] {
            if value == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!("serve.{name} must be at least 1"),
                ));
            }
        }
        Ok(())
    }

    /// The runtime settings for serving: the request deadline as the guest
    /// deadline, and a pooling allocator with an instance per concurrent
    /// request unless `runtime.pooling_instances` is set.
    pub fn runtime(&self, base: &RuntimeConfig) -> Result<RuntimeConfig> {
        self.check()?;
        let mut runtime = base.clone();
        runtime.deadline_ms = self.request_timeout_ms;
        let wanted = u32::try_from(self.max_concurrent_requests).unwrap_or(u32::MAX);
        if runtime.pooling_instances == 0 {
            runtime.pooling_instances = wanted;
        } else if runtime.pooling_instances < wanted {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "serve.max_concurrent_requests ({}) is more than runtime.pooling_instances ({}): every request in flight holds an instance",
                    self.max_concurrent_requests, runtime.pooling_instances
                ),
            ));
        }
        Ok(runtime)
    }
}

impl RuntimeConfig {
    /// The component cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("wasikv")
                .join("components")
        })
    }
}

impl Config {
    /// Loads `file` (or `wasikv.toml` in the working directory when it exists),
    /// then the `WASIKV_` environment, then fills defaults.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("config file {} does not exist", path.display()),
                    ));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => {
                if Path::new(DEFAULT_FILE).is_file() {
                    figment = figment.merge(Toml::file(DEFAULT_FILE));
                }
            }
        }
        figment = figment.merge(env_provider());
        Config::from_figment(figment)
    }

    /// Parses a TOML document (no environment), then fills defaults.
    pub fn from_toml(text: &str) -> Result<Config> {
        Config::from_figment(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    fn from_figment(figment: Figment) -> Result<Config> {
        let mut config: Config = figment.extract().map_err(|e| {
            let messages: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            Error::new(ErrorKind::InvalidConfig, messages.join("; "))
        })?;
        config.fill_defaults();
        config.validate()?;
        Ok(config)
    }

    /// The policy for components without a `[components.NAME]` section:
    /// `access.unlisted` if set; otherwise deny when any component is
    /// listed, allow when none is.
    pub fn unlisted_policy(&self) -> Unlisted {
        self.access
            .unlisted
            .unwrap_or(if self.components.is_empty() {
                Unlisted::Allow
            } else {
                Unlisted::Deny
            })
    }

    /// The `[components.NAME]` section of `component`, matched ignoring
    /// ASCII case (the check at load refuses two names that differ only in it).
    pub fn component(&self, component: &str) -> Option<&ComponentConfig> {
        self.components
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(component))
            .map(|(_, c)| c)
    }

    /// Adds the `default` bucket (embedded, `<data_dir>/default.redb`) unless configured.
    fn fill_defaults(&mut self) {
        self.buckets
            .entry("default".to_string())
            .or_insert_with(|| {
                let path = self.runtime.data_dir.join("default.redb");
                let mut options = serde_json::Map::new();
                options.insert(
                    "path".into(),
                    serde_json::Value::String(path.to_string_lossy().into_owned()),
                );
                BucketConfig {
                    provider: "embedded".into(),
                    options,
                }
            });
    }

    fn validate(&self) -> Result<()> {
        let l = &self.limits;
        let positive = [
            ("max_key_bytes", l.max_key_bytes),
            ("max_value_bytes", l.max_value_bytes),
            ("max_batch_keys", l.max_batch_keys),
            ("max_call_bytes", l.max_call_bytes),
            ("list_page_keys", l.list_page_keys),
            ("batch_concurrency", l.batch_concurrency),
            ("increment_attempts", l.increment_attempts as usize),
            ("watch_queue", l.watch_queue),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!("limits.{name} must be at least 1"),
                ));
            }
        }
        self.serve.check()?;
        same_but_for_case("components", self.components.keys())?;
        same_but_for_case("buckets", self.buckets.keys())?;
        for (component, c) in &self.components {
            for bucket in &c.buckets {
                if !self.buckets.contains_key(bucket) {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "components.{component}.buckets names {bucket:?}, which is not configured under [buckets]"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Refuses two names of one section that differ only in ASCII case: an
/// environment variable (`WASIKV_BUCKETS__CACHE__URL`) reaches its section
/// lowercased, so such names would silently split one entry in two.
fn same_but_for_case<'a>(section: &str, names: impl Iterator<Item = &'a String>) -> Result<()> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for name in names {
        if let Some(other) = seen.insert(name.to_ascii_lowercase(), name) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{section}.{other} and {section}.{name} differ only in case: names from WASIKV_{} environment variables arrive lowercased, so use one spelling (lowercase to set it from the environment)",
                    section.to_ascii_uppercase()
                ),
            ));
        }
    }
    Ok(())
}

/// `WASIKV_SECTION__KEY...` variables. Only nested keys are read, so that
/// unrelated variables such as `WASIKV_LOG` never break the configuration.
fn env_provider() -> Env {
    Env::prefixed("WASIKV_")
        .filter(|key| key.as_str().contains("__"))
        .split("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_an_embedded_default_bucket() {
        let config = Config::from_toml("").unwrap();
        let default = &config.buckets["default"];
        assert_eq!(default.provider, "embedded");
        assert_eq!(
            default.options["path"],
            PathBuf::from(".wasikv")
                .join("default.redb")
                .to_string_lossy()
                .as_ref()
        );
        assert_eq!(config.limits.max_key_bytes, 1024);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::from_toml("[limit]\nmax_key_bytes = 3\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("limit"), "{err}");
        let err = Config::from_toml("[limits]\nmax_key_byte = 3\n").unwrap_err();
        assert!(err.to_string().contains("max_key_byte"), "{err}");
    }

    #[test]
    fn allow_list_must_name_configured_buckets() {
        let err = Config::from_toml("[components.app]\nbuckets = [\"nope\"]\n").unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }

    #[test]
    fn unlisted_components_are_denied_once_any_component_is_listed() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.unlisted_policy(), Unlisted::Allow);
        let config = Config::from_toml("[components.app]\nbuckets = [\"default\"]\n").unwrap();
        assert_eq!(config.unlisted_policy(), Unlisted::Deny);
        let config = Config::from_toml(
            "[access]\nunlisted = \"allow\"\n[components.app]\nbuckets = [\"default\"]\n",
        )
        .unwrap();
        assert_eq!(config.unlisted_policy(), Unlisted::Allow);
        let config = Config::from_toml("[access]\nunlisted = \"deny\"\n").unwrap();
        assert_eq!(config.unlisted_policy(), Unlisted::Deny);
        let err = Config::from_toml("[access]\nunlisted = \"maybe\"\n").unwrap_err();
        assert!(err.to_string().contains("unlisted"), "{err}");
    }

    #[test]
    fn component_names_ignore_case_and_may_not_collide() {
        let config = Config::from_toml("[components.MyApp]\nbuckets = [\"default\"]\n").unwrap();
        assert!(config.component("myapp").is_some());
        assert!(config.component("MYAPP").is_some());
        assert!(config.component("other").is_none());
        let err = Config::from_toml(
            "[components.MyApp]\nbuckets = [\"default\"]\n[components.myapp]\nbuckets = []\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("differ only in case"), "{err}");
        let err = Config::from_toml(
            "[buckets.Cache]\nprovider = \"memory\"\n[buckets.cache]\nprovider = \"memory\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("differ only in case"), "{err}");
    }

    /// The environment reaches a mixed-case component: `WASIKV_COMPONENTS__MYAPP__BUCKETS`
    /// restricts `MyApp.wasm`.
    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure returns figment's error
    fn component_allow_lists_from_the_environment_apply_whatever_the_case() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("WASIKV_COMPONENTS__MYAPP__BUCKETS", "[\"default\"]");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let c = config.component("MyApp").expect("listed");
            assert_eq!(c.buckets, vec!["default".to_string()]);
            assert_eq!(config.unlisted_policy(), Unlisted::Deny);
            Ok(())
        });
    }

    #[test]
    fn zero_limits_are_refused() {
        let err = Config::from_toml("[limits]\nbatch_concurrency = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("limits.batch_concurrency"),
            "{err}"
        );
    }

    #[test]
    fn bucket_options_are_kept_for_the_provider() {
        let config = Config::from_toml(
            "[buckets.cache]\nprovider = \"memory\"\nmap = \"m\"\nmax_value_bytes = 10\n",
        )
        .unwrap();
        let cache = &config.buckets["cache"];
        assert_eq!(cache.provider, "memory");
        assert_eq!(cache.options["map"], "m");
        assert_eq!(cache.options["max_value_bytes"], 10);
    }

    #[test]
    fn a_ttl_is_planned_for_the_bucket_and_refused_where_keys_cannot_expire() {
        let plan = |text: &str| {
            crate::Buckets::from_config(&Config::from_toml(text).unwrap())
                .map(|b| b.plan("b").expect("configured").ttl)
        };
        assert_eq!(
            plan("[buckets.b]\nprovider = \"memory\"\nttl = \"1h30m\"\n").unwrap(),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(plan("[buckets.b]\nprovider = \"memory\"\n").unwrap(), None);
        let err = plan("[buckets.b]\nprovider = \"memory\"\nttl = 60\n").unwrap_err();
        assert!(
            err.to_string().contains("ttl") && err.to_string().contains("\"b\" (memory)"),
            "{err}"
        );
    }
}
