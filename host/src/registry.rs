//! The providers compiled into this host, and the cargo feature of each one
//! that is not.

use std::sync::Arc;

use wasikv_core::{Error, ErrorKind, Provider, Result};

/// Every provider wasikv knows, with the cargo feature of `wasikv-host` that
/// compiles it in (`None`: always built).
pub const KNOWN: &[(&str, Option<&str>)] = &[
    ("memory", None),
    ("embedded", None),
    ("redis", Some("redis")),
    ("memcached", Some("memcached")),
    ("etcd", Some("etcd")),
    ("dynamodb", Some("dynamodb")),
    ("cosmos", Some("cosmos")),
    ("firestore", Some("firestore")),
];

/// The providers compiled in.
pub fn compiled() -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(wasikv_memory::MemoryProvider),
        Arc::new(wasikv_embedded::EmbeddedProvider),
    ]
}

/// The compiled-in provider called `name`, or an error saying which cargo
/// feature would compile it in.
pub fn find(name: &str) -> Result<Arc<dyn Provider>> {
    if let Some(p) = compiled().into_iter().find(|p| p.name() == name) {
        return Ok(p);
    }
    match KNOWN.iter().find(|(known, _)| *known == name) {
        Some((_, Some(feature))) => Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "provider {name:?} is not compiled into this wasikv; rebuild with `--features {feature}`"
            ),
        )),
        _ => {
            let names: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
            Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "unknown provider {name:?}; known providers: {}",
                    names.join(", ")
                ),
            ))
        }
    }
}
