//! The `wasi:keyvalue@0.2.0-draft2` host: [`WasiKeyValueCtx`] (owned, one per
//! store), the borrowed view [`WasiKeyValue`], and [`add_to_linker`].
//!
//! WIT errors are produced in exactly one place, `WitError::from`.

use std::sync::Arc;

use wasikv_core::{ErrorKind, Versioned, WriteOutcome};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::buckets::{Buckets, OpenBucket};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::keyvalue::BucketResource,
            "wasi:keyvalue/atomics.cas": crate::keyvalue::CasResource,
        },
    });
}

/// Bindings of the `watch-service` world: the guest's `watcher` export, over
/// the same import bindings.
pub(crate) mod watch_service {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/watch-service@0.2.0-draft2",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:keyvalue/store": super::generated::wasi::keyvalue::store,
            "wasi:keyvalue/atomics": super::generated::wasi::keyvalue::atomics,
            "wasi:keyvalue/batch": super::generated::wasi::keyvalue::batch,
        },
    });
}

/// `batch` as revised upstream on 2024-10-17 (`get-many` returns
/// `list<tuple<string, option<list<u8>>>>`), under the same version string;
/// the revision Spin vendors. Served to components that import that shape
/// ([`GetManyShape::KeyAndOption`]).
mod batch_2024_10_17 {
    wasmtime::component::bindgen!({
        path: "../wit/draft2-2024-10-17",
        world: "wasi:keyvalue/batch-2024-10-17@0.2.0-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store": super::generated::wasi::keyvalue::store,
        },
    });
}

use generated::wasi::keyvalue::{atomics, batch, store};

/// A guest's `bucket` resource.
#[derive(Debug, Clone)]
pub struct BucketResource {
    pub(crate) bucket: Arc<OpenBucket>,
}

/// A guest's `cas` resource: the key and what was read (value and version, or absence).
#[derive(Debug)]
pub struct CasResource {
    bucket: Arc<OpenBucket>,
    key: String,
    read: Option<Versioned>,
}

/// The key-value state of one wasmtime store (one component instance).
#[derive(Debug, Clone)]
pub struct WasiKeyValueCtx {
    pub(crate) buckets: Arc<Buckets>,
    pub(crate) component: Option<String>,
    /// Numeric `list-keys` cursors handed to `0.2.0-draft` guests.
    pub(crate) draft_cursors: Arc<std::sync::Mutex<crate::keyvalue_draft::DraftCursors>>,
}

impl WasiKeyValueCtx {
    /// A builder over the host's buckets.
    pub fn builder(buckets: Arc<Buckets>) -> WasiKeyValueCtxBuilder {
        WasiKeyValueCtxBuilder {
            buckets,
            component: None,
        }
    }
}

/// Builds a [`WasiKeyValueCtx`].
#[derive(Debug)]
pub struct WasiKeyValueCtxBuilder {
    buckets: Arc<Buckets>,
    component: Option<String>,
}

impl WasiKeyValueCtxBuilder {
    /// The component's name, for its allow-list (`[components.NAME]`).
    pub fn component(mut self, name: impl Into<String>) -> Self {
        self.component = Some(name.into());
        self
    }

    /// The context.
    pub fn build(self) -> WasiKeyValueCtx {
        WasiKeyValueCtx {
            buckets: self.buckets,
            component: self.component,
            draft_cursors: Default::default(),
        }
    }
}

/// A borrowed view of a store's key-value state and resource table.
pub struct WasiKeyValue<'a> {
    pub(crate) ctx: &'a WasiKeyValueCtx,
    pub(crate) table: &'a mut ResourceTable,
}

impl<'a> WasiKeyValue<'a> {
    /// The view over `ctx` and `table`.
    pub fn new(ctx: &'a WasiKeyValueCtx, table: &'a mut ResourceTable) -> Self {
        WasiKeyValue { ctx, table }
    }

    pub(crate) fn bucket(
        &self,
        handle: &Resource<BucketResource>,
    ) -> wasmtime::Result<&Arc<OpenBucket>> {
        // Borrowed, not cloned: a call holds the table for its whole length.
        Ok(&self.table.get(handle)?.bucket)
    }

    /// `store.open` for either WIT version: the bucket as a new resource.
    pub(crate) async fn open_resource(
        &mut self,
        identifier: &str,
    ) -> wasmtime::Result<wasikv_core::Result<Resource<BucketResource>>> {
        let opened = self
            .ctx
            .buckets
            // An unnamed context is a component like any other (named ""),
            // never the host's own access.
            .open(
                Some(self.ctx.component.as_deref().unwrap_or("")),
                identifier,
            )
            .await;
        Ok(match opened {
            Ok(bucket) => Ok(self.table.push(BucketResource { bucket })?),
            Err(e) => Err(e),
        })
    }
}

/// Adds `wasi:keyvalue/{store,atomics,batch}` to `linker`, both
/// `@0.2.0-draft2` and the older `@0.2.0-draft` (served from the same
/// buckets), so components built for either run unchanged.
///
/// ```no_run
/// use std::sync::Arc;
/// use wasikv_host::{Buckets, Config, WasiKeyValue, WasiKeyValueCtx};
/// use wasmtime::component::{Linker, ResourceTable};
///
/// struct State { table: ResourceTable, kv: WasiKeyValueCtx }
///
/// # fn main() -> wasmtime::Result<()> {
/// let engine = wasmtime::Engine::default();
/// let mut linker = Linker::<State>::new(&engine);
/// wasikv_host::add_to_linker(&mut linker, |s: &mut State| WasiKeyValue::new(&s.kv, &mut s.table))?;
/// let buckets = Arc::new(Buckets::from_config(&Config::load(None)?)?);
/// let state = State { table: ResourceTable::new(), kv: WasiKeyValueCtx::builder(buckets).component("app").build() };
/// # let _ = state; Ok(()) }
/// ```
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> WasiKeyValue<'_>,
) -> wasmtime::Result<()> {
    add_to_linker_with(linker, f, GetManyShape::OptionalPair)
}

/// [`add_to_linker`] with `batch@0.2.0-draft2` in the given shape: pick it
/// per component with [`GetManyShape::of`] (one linker per shape).
pub fn add_to_linker_with<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> WasiKeyValue<'_>,
    shape: GetManyShape,
) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasWasiKeyValue>(linker, f)?;
    atomics::add_to_linker::<_, HasWasiKeyValue>(linker, f)?;
    match shape {
        GetManyShape::OptionalPair => batch::add_to_linker::<_, HasWasiKeyValue>(linker, f)?,
        GetManyShape::KeyAndOption => {
            batch_2024_10_17::wasi::keyvalue::batch::add_to_linker::<_, HasWasiKeyValue>(linker, f)?
        }
    }
    crate::keyvalue_draft::add_to_linker(linker, f)?;
    Ok(())
}

/// The two shapes of `wasi:keyvalue/batch@0.2.0-draft2`'s `get-many` result
/// that components are built with: the same package version, two revisions
/// of the upstream WIT. One linker can hold only one of them, so the host
/// keeps a linker per shape and picks it per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetManyShape {
    /// `list<option<tuple<string, list<u8>>>>` (`wit/batch.wit`: the
    /// design contract, and what components that import no batch get).
    OptionalPair,
    /// `list<tuple<string, option<list<u8>>>>` (`wit/draft2-2024-10-17`,
    /// the revision of 2024-10-17 that Spin's SDK and host use).
    KeyAndOption,
}

impl GetManyShape {
    /// The shape `component` imports (`OptionalPair` when it imports no
    /// draft2 `batch`).
    pub fn of(component: &wasmtime::component::Component, engine: &wasmtime::Engine) -> Self {
        match get_many_element(component, engine) {
            Some(wasmtime::component::types::Type::Tuple(_)) => GetManyShape::KeyAndOption,
            _ => GetManyShape::OptionalPair,
        }
    }
}

/// The element type of the list that the draft2 `batch.get-many` imported by
/// `component` returns, if it imports one.
fn get_many_element(
    component: &wasmtime::component::Component,
    engine: &wasmtime::Engine,
) -> Option<wasmtime::component::types::Type> {
    use wasmtime::component::types::{ComponentItem, Type};

    let ty = component.component_type();
    let (_, batch) = ty
        .imports(engine)
        .find(|(name, _)| name.starts_with("wasi:keyvalue/batch@0.2.0-draft2"))?;
    let ComponentItem::ComponentInstance(instance) = batch.ty else {
        return None;
    };
    let ComponentItem::ComponentFunc(get_many) = instance.get_export(engine, "get-many")?.ty else {
        return None;
    };
    match get_many.results().next()? {
        Type::Result(result) => match result.ok()? {
            Type::List(list) => Some(list.ty()),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) struct HasWasiKeyValue;

impl HasData for HasWasiKeyValue {
    type Data<'a> = WasiKeyValue<'a>;
}

/// The one conversion from wasikv errors to the WIT error, shared by both
/// WIT versions (they have the same three cases): `no-such-store` and
/// `access-denied` map to their cases, everything else to `other` with the
/// full message (bucket, provider, kind, limit).
pub(crate) enum WitError {
    NoSuchStore,
    AccessDenied,
    Other(String),
}

impl From<wasikv_core::Error> for WitError {
    fn from(e: wasikv_core::Error) -> Self {
        match e.kind() {
            ErrorKind::NoSuchStore => WitError::NoSuchStore,
            ErrorKind::AccessDenied => WitError::AccessDenied,
            _ => WitError::Other(e.to_string()),
        }
    }
}

/// A wasikv error as the `0.2.0-draft2` WIT error (see `WitError`).
pub fn to_wit(e: wasikv_core::Error) -> store::Error {
    match WitError::from(e) {
        WitError::NoSuchStore => store::Error::NoSuchStore,
        WitError::AccessDenied => store::Error::AccessDenied,
        WitError::Other(message) => store::Error::Other(message),
    }
}

type WitResult<T> = wasmtime::Result<Result<T, store::Error>>;

fn wit<T>(result: wasikv_core::Result<T>) -> WitResult<T> {
    Ok(result.map_err(to_wit))
}

impl store::Host for WasiKeyValue<'_> {
    async fn open(&mut self, identifier: String) -> WitResult<Resource<BucketResource>> {
        wit(self.open_resource(&identifier).await?)
    }
}

impl store::HostBucket for WasiKeyValue<'_> {
    async fn get(
        &mut self,
        bucket: Resource<BucketResource>,
        key: String,
    ) -> WitResult<Option<Vec<u8>>> {
        let b = self.bucket(&bucket)?;
        wit(b.get(&key).await)
    }

    async fn set(
        &mut self,
        bucket: Resource<BucketResource>,
        key: String,
        value: Vec<u8>,
    ) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.set(key, value).await)
    }

    async fn delete(&mut self, bucket: Resource<BucketResource>, key: String) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.delete(&key).await)
    }

    async fn exists(&mut self, bucket: Resource<BucketResource>, key: String) -> WitResult<bool> {
        let b = self.bucket(&bucket)?;
        wit(b.exists(&key).await)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<BucketResource>,
        cursor: Option<String>,
    ) -> WitResult<store::KeyResponse> {
        let b = self.bucket(&bucket)?;
        wit(b
            .list_keys(cursor.as_deref())
            .await
            .map(|(keys, cursor)| store::KeyResponse { keys, cursor }))
    }

    async fn drop(&mut self, bucket: Resource<BucketResource>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for WasiKeyValue<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<BucketResource>,
        key: String,
        delta: i64,
    ) -> WitResult<i64> {
        let b = self.bucket(&bucket)?;
        wit(b.increment(&key, delta).await)
    }

    async fn swap(
        &mut self,
        cas: Resource<CasResource>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        let outcome = handle
            .bucket
            .swap(&handle.key, handle.read.as_ref(), value)
            .await;
        match outcome {
            Ok(WriteOutcome::Written) => Ok(Ok(())),
            Ok(WriteOutcome::ConditionFailed) => {
                // Refresh the handle to the latest state, as the WIT requires.
                match handle.bucket.read_versioned(&handle.key).await {
                    Ok(read) => {
                        let fresh = self.table.push(CasResource { read, ..handle })?;
                        Ok(Err(atomics::CasError::CasFailed(fresh)))
                    }
                    Err(e) => Ok(Err(atomics::CasError::StoreError(to_wit(e)))),
                }
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(to_wit(e)))),
        }
    }
}

impl atomics::HostCas for WasiKeyValue<'_> {
    async fn new(
        &mut self,
        bucket: Resource<BucketResource>,
        key: String,
    ) -> WitResult<Resource<CasResource>> {
        let b = self.bucket(&bucket)?.clone();
        match b.read_versioned(&key).await {
            Ok(read) => Ok(Ok(self.table.push(CasResource {
                bucket: b,
                key,
                read,
            })?)),
            Err(e) => wit(Err(e)),
        }
    }

    async fn current(&mut self, cas: Resource<CasResource>) -> WitResult<Option<Vec<u8>>> {
        let handle = self.table.get(&cas)?;
        Ok(Ok(handle.read.as_ref().map(|v| v.value.clone())))
    }

    async fn drop(&mut self, cas: Resource<CasResource>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for WasiKeyValue<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<BucketResource>,
        keys: Vec<String>,
    ) -> WitResult<Vec<Option<(String, Vec<u8>)>>> {
        let b = self.bucket(&bucket)?;
        wit(b.get_many(keys).await)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<BucketResource>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.set_many(key_values).await)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<BucketResource>,
        keys: Vec<String>,
    ) -> WitResult<()> {
        let b = self.bucket(&bucket)?;
        wit(b.delete_many(keys).await)
    }
}

impl batch_2024_10_17::wasi::keyvalue::batch::Host for WasiKeyValue<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<BucketResource>,
        keys: Vec<String>,
    ) -> WitResult<Vec<(String, Option<Vec<u8>>)>> {
        let b = self.bucket(&bucket)?;
        let found = b.get_many(keys.clone()).await;
        wit(found.map(|values| {
            keys.into_iter()
                .zip(values)
                .map(|(key, value)| (key, value.map(|(_, v)| v)))
                .collect()
        }))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<BucketResource>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> WitResult<()> {
        batch::Host::set_many(self, bucket, key_values).await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<BucketResource>,
        keys: Vec<String>,
    ) -> WitResult<()> {
        batch::Host::delete_many(self, bucket, keys).await
    }
}
