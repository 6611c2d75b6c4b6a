//! cairn's S3 front end: the S3 protocol (REST routes, XML, SigV4 in all its forms, through
//! the `s3s` crate) as a thin adapter over `cairn-client`'s data path, so objects and files
//! are the same bytes: an object PUT over S3 is a file to REST, the CLI and a mount.
//!
//! The node builds one [`service`] over its own [`Backend`] and its key table ([`KeyStore`])
//! and serves it on its S3 port. How names map is in [`names`]; what an object keeps beside
//! its bytes, in [`meta`].

#![warn(missing_docs)]

mod auth;
mod errors;
mod headers;
pub mod list;
pub mod meta;
pub mod multipart;
pub mod names;
mod objects;
mod service;
mod store;
mod sums;
mod tags;
mod uploads;
mod versioned;
mod versions;
pub mod walk;

pub use auth::{KeyStore, PUBLIC_XATTR};
pub use multipart::sweep;
pub use service::Cairn;

use cairn_client::Backend;
use s3s::service::{S3Service, S3ServiceBuilder};
use std::sync::Arc;

/// The S3 service over `backend`, checking signatures and rights against `keys`.
pub fn service<B: Backend>(backend: Arc<B>, keys: Arc<dyn KeyStore>) -> S3Service {
    let mut b = S3ServiceBuilder::new(Cairn { backend: backend.clone() });
    b.set_auth(auth::Secrets(keys.clone()));
    b.set_access(auth::Rights { backend, keys });
    b.build()
}
