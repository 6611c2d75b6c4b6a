//! The versioning operations of the S3 API, decoded and encoded around [`crate::versions`].

use crate::list::{self, MAX_KEYS};
use crate::names::{bucket_path, object_path};
use crate::service::Cairn;
use crate::store;
use crate::versions::{self, Listed};
use cairn_client::Backend;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use std::time::{Duration, UNIX_EPOCH};

type Out<T> = S3Result<S3Response<T>>;

impl<B: Backend> Cairn<B> {
    pub(crate) async fn versioning_get(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> Out<GetBucketVersioningOutput> {
        let status = versions::status(self.backend.as_ref(), &req.input.bucket).await?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: status.map(BucketVersioningStatus::from),
            ..Default::default()
        }))
    }

    pub(crate) async fn versioning_put(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> Out<PutBucketVersioningOutput> {
        let i = &req.input;
        let enabled = match i.versioning_configuration.status.as_ref().map(|s| s.as_str()) {
            Some(BucketVersioningStatus::ENABLED) => true,
            Some(BucketVersioningStatus::SUSPENDED) => false,
            _ => return Err(s3_error!(MalformedXML, "versioning status must be Enabled or Suspended")),
        };
        versions::set_status(self.backend.as_ref(), &i.bucket, enabled).await?;
        Ok(S3Response::new(PutBucketVersioningOutput {}))
    }

    pub(crate) async fn versions_list(&self, req: S3Request<ListObjectVersionsInput>) -> Out<ListObjectVersionsOutput> {
        let i = &req.input;
        let bucket = bucket_path(&i.bucket)?;
        let dir = store::bucket_dir(self.backend.as_ref(), &bucket).await?;
        let max = i.max_keys.map_or(MAX_KEYS, |m| (m.max(0) as usize).min(MAX_KEYS));
        let key_marker = i.key_marker.clone().filter(|k| !k.is_empty());
        let mut listed: Vec<Listed> = Vec::new();
        // The rest of the marker key's versions, after the marker version.
        if let (Some(key), Some(vm)) = (&key_marker, &i.version_id_marker) {
            let after = versions::parse_id(vm)?;
            let o = object_path(&i.bucket, key)?;
            let item = match store::look(self.backend.as_ref(), &bucket, &o, false).await?.target(&o) {
                (_, Some((inode, _))) => crate::walk::Item::Object { key: key.clone(), inode },
                (file, None) => match (file.parent(), file.name()) {
                    (Some(parent), Some(name)) => match store::stat_opt(self.backend.as_ref(), &parent).await? {
                        Some(p) => crate::walk::Item::Deleted { key: key.clone(), dir: p.ino, name: name.to_string() },
                        None => crate::walk::Item::Dir { prefix: String::new(), inode: dir.clone() },
                    },
                    _ => crate::walk::Item::Dir { prefix: String::new(), inode: dir.clone() },
                },
            };
            listed.extend(
                versions::expand(self.backend.as_ref(), &[item])
                    .await?
                    .into_iter()
                    .filter(|l| l.version.version < after),
            );
        }
        let r = list::Request {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after: key_marker.clone(),
            max,
            with_graves: true,
        };
        let page = list::list(self.backend.as_ref(), dir.ino, &r).await.map_err(crate::errors::s3)?;
        listed.extend(versions::expand(self.backend.as_ref(), &page.objects).await?);
        let mut truncated = page.truncated;
        let prefixes = page.prefixes.len();
        if listed.len() + prefixes > max {
            listed.truncate(max.saturating_sub(prefixes));
            truncated = true;
        }
        let (next_key, next_version) = match (truncated, listed.last()) {
            (true, Some(l)) => (Some(l.key.clone()), Some(l.version.version.to_string())),
            (true, None) => (page.last.clone(), None),
            _ => (None, None),
        };
        let when = |ns: i64| Timestamp::from(UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64));
        let (mut versions_out, mut markers) = (Vec::new(), Vec::new());
        for l in listed {
            if l.version.deleted {
                markers.push(DeleteMarkerEntry {
                    key: Some(l.key),
                    version_id: Some(l.version.version.to_string()),
                    is_latest: Some(l.latest),
                    last_modified: Some(when(l.version.mtime)),
                    ..Default::default()
                });
            } else {
                versions_out.push(ObjectVersion {
                    key: Some(l.key),
                    version_id: Some(l.version.version.to_string()),
                    is_latest: Some(l.latest),
                    size: Some(l.version.size as i64),
                    e_tag: l.etag.map(ETag::Strong),
                    last_modified: Some(when(l.version.mtime)),
                    storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(i.bucket.clone()),
            prefix: i.prefix.clone(),
            delimiter: i.delimiter.clone(),
            key_marker: i.key_marker.clone(),
            version_id_marker: i.version_id_marker.clone(),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            versions: Some(versions_out),
            delete_markers: Some(markers),
            common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
            ..Default::default()
        }))
    }
}
