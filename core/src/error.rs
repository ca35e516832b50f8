//! The one error type of wasikv: a [`ErrorKind`], a message, the bucket and
//! provider it happened on, and whether retrying may help.

use std::fmt;

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bucket identifier is not configured.
    NoSuchStore,
    /// The component may not open this bucket.
    AccessDenied,
    /// A key, value, batch or response is over a limit.
    TooLarge,
    /// The key cannot be stored (e.g. the store rejects it and no encoding applies).
    InvalidKey,
    /// The stored value is not what the operation needs (e.g. increment of a non-number),
    /// or the result would overflow.
    InvalidValue,
    /// A `list-keys` cursor that this bucket did not issue.
    InvalidCursor,
    /// The configuration is wrong.
    InvalidConfig,
    /// A concurrent writer won (a condition failed, or a retry budget ran out).
    Conflict,
    /// The store cannot be reached or timed out.
    Unavailable,
    /// The operation is not supported by this store.
    Unsupported,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// A short stable name, e.g. `too-large`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoSuchStore => "no-such-store",
            ErrorKind::AccessDenied => "access-denied",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::InvalidKey => "invalid-key",
            ErrorKind::InvalidValue => "invalid-value",
            ErrorKind::InvalidCursor => "invalid-cursor",
            ErrorKind::InvalidConfig => "invalid-config",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a provider, the host's emulation layer or the configuration.
///
/// Its `Display` names the bucket and provider when known, e.g.
/// `bucket "cache" (redis): too-large: value is 2000000 bytes, over the limit of 1048576`.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    bucket: Option<String>,
    provider: Option<String>,
    retryable: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            bucket: None,
            provider: None,
            retryable: matches!(kind, ErrorKind::Unavailable | ErrorKind::Conflict),
            source: None,
        }
    }

    /// `Unsupported` for the named operation.
    pub fn unsupported(operation: &str) -> Self {
        Error::new(
            ErrorKind::Unsupported,
            format!("{operation} is not supported by this store"),
        )
    }

    /// `TooLarge` naming what, its size and the limit.
    pub fn too_large(what: &str, size: usize, limit: usize) -> Self {
        Error::new(
            ErrorKind::TooLarge,
            format!("{what} is {size} bytes, over the limit of {limit} bytes"),
        )
    }

    /// `Unavailable` (retryable) wrapping a transport error.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::new(ErrorKind::Unavailable, message).with_source(source)
    }

    /// `Other` wrapping a native error.
    pub fn other(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::new(ErrorKind::Other, message).with_source(source)
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Overrides whether retrying may help.
    pub fn set_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Records the bucket and provider, unless already recorded.
    pub fn in_bucket(mut self, bucket: &str, provider: &str) -> Self {
        if self.bucket.is_none() {
            self.bucket = Some(bucket.to_string());
        }
        if self.provider.is_none() {
            self.provider = Some(provider.to_string());
        }
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The bucket it happened on, if known.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }

    /// The provider it happened on, if known.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// Whether the same operation may succeed when tried again.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.bucket, &self.provider) {
            (Some(b), Some(p)) => write!(f, "bucket {b:?} ({p}): ")?,
            (Some(b), None) => write!(f, "bucket {b:?}: ")?,
            (None, Some(p)) => write!(f, "{p}: ")?,
            (None, None) => {}
        }
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_bucket_provider_and_limit() {
        let e = Error::too_large("value", 2_000_000, 1_048_576).in_bucket("cache", "redis");
        assert_eq!(
            e.to_string(),
            "bucket \"cache\" (redis): too-large: value is 2000000 bytes, over the limit of 1048576 bytes"
        );
        assert!(!e.is_retryable());
        assert!(Error::new(ErrorKind::Unavailable, "down").is_retryable());
    }

    #[test]
    fn first_context_wins() {
        let e = Error::new(ErrorKind::Other, "x")
            .in_bucket("a", "memory")
            .in_bucket("b", "redis");
        assert_eq!(e.bucket(), Some("a"));
        assert_eq!(e.provider(), Some("memory"));
    }
}
