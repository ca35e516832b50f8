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
    ("etcd", Some("etcd")),
    ("memcached", Some("memcached")),
    ("dynamodb", Some("dynamodb")),
    ("firestore", Some("firestore")),
    ("cosmos", Some("cosmos")),
    ("postgres", Some("postgres")),
    ("nats", Some("nats")),
];

/// The providers compiled in.
pub fn compiled() -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(wasikv_memory::MemoryProvider),
        Arc::new(wasikv_embedded::EmbeddedProvider),
        #[cfg(feature = "redis")]
        Arc::new(wasikv_redis::RedisProvider),
        #[cfg(feature = "etcd")]
        Arc::new(wasikv_etcd::EtcdProvider),
        #[cfg(feature = "memcached")]
        Arc::new(wasikv_memcached::MemcachedProvider),
        #[cfg(feature = "dynamodb")]
        Arc::new(wasikv_dynamodb::DynamoProvider),
        #[cfg(feature = "firestore")]
        Arc::new(wasikv_firestore::FirestoreProvider),
        #[cfg(feature = "cosmos")]
        Arc::new(wasikv_cosmos::CosmosProvider),
        #[cfg(feature = "postgres")]
        Arc::new(wasikv_postgres::PostgresProvider),
        #[cfg(feature = "nats")]
        Arc::new(wasikv_nats::NatsProvider),
    ]
}

/// The compiled-in provider called `name`, or an error saying which cargo
/// feature would compile it in.
pub fn find(name: &str) -> Result<Arc<dyn Provider>> {
    find_in(compiled(), name)
}

fn find_in(compiled: Vec<Arc<dyn Provider>>, name: &str) -> Result<Arc<dyn Provider>> {
    if let Some(p) = compiled.into_iter().find(|p| p.name() == name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_provider_not_compiled_in_names_its_feature() {
        let err = find_in(Vec::new(), "redis")
            .err()
            .expect("nothing compiled in");
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.message().contains("rebuild with `--features redis`"),
            "{err}"
        );
        let err = find_in(compiled(), "nosuch").err().expect("unknown");
        assert!(
            err.message()
                .contains("unknown provider \"nosuch\"; known providers: memory, embedded"),
            "{err}"
        );
        assert_eq!(find_in(compiled(), "memory").unwrap().name(), "memory");
    }

    #[test]
    fn every_compiled_provider_is_known() {
        for p in compiled() {
            assert!(
                KNOWN.iter().any(|(n, _)| *n == p.name()),
                "{} missing from KNOWN",
                p.name()
            );
        }
    }
}
