//! Who may do what over S3: signatures are checked by s3s against the secrets of cairn's
//! access keys ([`KeyStore`]); each request is then checked against its key's rights (read,
//! write, admin, path prefixes) on the bucket or object it names. A request without a
//! signature may only read a bucket made public (`cairn bucket public BUCKET`: the
//! [`PUBLIC_XATTR`] attribute on the bucket's directory).

use crate::names::{bucket_path, object_path};
use cairn_client::Backend;
use cairn_core::access::{Access, AccessKey};
use cairn_core::wire::{Query, QueryReply, Target};
use cairn_core::{ApiError, FsPath};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{s3_error, S3Result};
use std::sync::Arc;

/// The attribute of a bucket's directory that makes it readable without a signature (value
/// `read`).
pub const PUBLIC_XATTR: &str = "user.cairn.s3.public";

/// Where access keys come from (the node's key table).
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The key with id `id` and its secret.
    async fn key(&self, id: &str) -> Result<(AccessKey, String), ApiError>;
}

/// s3s's hook for secrets.
pub(crate) struct Secrets(pub Arc<dyn KeyStore>);

#[async_trait::async_trait]
impl S3Auth for Secrets {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.key(access_key).await {
            Ok((_, secret)) => Ok(SecretKey::from(secret)),
            Err(_) => Err(s3_error!(InvalidAccessKeyId)),
        }
    }
}

/// s3s's hook for rights.
pub(crate) struct Rights<B> {
    pub backend: Arc<B>,
    pub keys: Arc<dyn KeyStore>,
}

/// True for operations that only read.
fn reads(op: &str) -> bool {
    op.starts_with("Get") || op.starts_with("Head") || op.starts_with("List")
}

/// True if `bucket` is public-read.
pub(crate) async fn is_public<B: Backend>(backend: &B, bucket: &str) -> bool {
    let Ok(path) = bucket_path(bucket) else { return false };
    let q = Query::GetXattr { at: Target::Path(path), name: PUBLIC_XATTR.into() };
    matches!(backend.query(q).await, Ok(QueryReply::Xattr(v)) if v == b"read")
}

#[async_trait::async_trait]
impl<B: Backend> S3Access for Rights<B> {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_string();
        let access = if reads(&op) { Access::Read } else { Access::Write };
        let path: Option<FsPath> = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } => Some(bucket_path(bucket)?),
            // A key that cannot be a path is refused by the operation itself; its rights are
            // judged on the bucket.
            S3Path::Object { bucket, key } => {
                Some(object_path(bucket, key).map(|o| o.path).or_else(|_| bucket_path(bucket))?)
            }
        };
        let Some(creds) = cx.credentials() else {
            let public = match cx.s3_path() {
                S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => {
                    is_public(self.backend.as_ref(), bucket).await
                }
                S3Path::Root => false,
            };
            if access == Access::Read && public {
                return Ok(());
            }
            return Err(s3_error!(AccessDenied, "a signature is required"));
        };
        let (key, _) = self.keys.key(&creds.access_key).await.map_err(|_| s3_error!(InvalidAccessKeyId))?;
        // Listing buckets shows each key the buckets it may read.
        let allowed = match &path {
            None => key.allows(Access::Any, None),
            Some(p) => key.allows(access, Some(std::slice::from_ref(p))),
        };
        if !allowed {
            return Err(s3_error!(AccessDenied, "access key {:?} may not {op} here", key.name));
        }
        cx.extensions_mut().insert(key);
        Ok(())
    }
}

/// Checks that the request's key (if any: public reads have none) may read `path`: for the
/// operations that read one place and write another (CopyObject, UploadPartCopy).
pub(crate) fn may_read(key: Option<&AccessKey>, path: &FsPath) -> S3Result<()> {
    match key {
        Some(k) if k.allows(Access::Read, Some(std::slice::from_ref(path))) => Ok(()),
        Some(k) => Err(s3_error!(AccessDenied, "access key {:?} may not read the copy source", k.name)),
        None => Err(s3_error!(AccessDenied, "a signature is required")),
    }
}
