//! The Google Cloud Firestore provider: `provider = "firestore"` (the
//! `firestore` crate's gRPC client).
//!
//! A bucket is a collection (optionally a subcollection of a document).
//! Document ids are keys through the key codec (`/` and `.` escaped, `__*__`
//! ids escaped, ids over 1500 bytes hashed with the original key kept in the
//! document); the value is the bytes field `v`. CAS versions are the
//! documents' `update_time` (a precondition on it; `exists = false` for
//! create-if-absent). Batches are one `BatchGetDocuments` or one atomic
//! `Commit` of up to 500 writes. Listing is `ListDocuments` with page tokens.
//! `increment` is the host's CAS loop: Firestore's `increment` transform turns
//! a non-number into the delta and caps on overflow, against the counter
//! contract.
//!
//! Layout: [`config`], [`core`] (client, emulator credentials, native-error
//! mapper), [`backend`] (the `Bucket` implementation and its capabilities).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;

pub use backend::{FirestoreBucket, FirestoreProvider};
pub use config::FirestoreConfig;
