//! The S3 operations: each decodes its input, calls the modules that do the work, and
//! encodes the answer. Operations not here answer `NotImplemented` (s3s's default).

use crate::auth::may_read;
use crate::errors::{is_not_found, s3};
use crate::list::{self, Listing, MAX_KEYS};
use crate::meta::ObjectMeta;
use crate::names::{bucket_path, object_path, ObjectPath};
use crate::objects::{self, etag, modified, Conditions, Upload};
use crate::store::{self, at, Found};
use crate::walk::Item;
use crate::{headers, sums, tags, versions};
use base64::Engine;
use cairn_client::{datapath, Backend};
use cairn_core::access::AccessKey;
use cairn_core::wire::{ClientCommand, Inode, InodeKind, NewAttrs, Query, QueryReply};
use cairn_core::FsPath;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use std::sync::Arc;

/// The S3 front end over a cluster reached through `B`.
pub struct Cairn<B> {
    pub(crate) backend: Arc<B>,
}

type Out<T> = S3Result<S3Response<T>>;

fn ok<T>(t: T) -> Out<T> {
    Ok(S3Response::new(t))
}

/// The kind of an object's stored checksum, when the client asked for checksums.
fn checksum_type(meta: &ObjectMeta, asked: bool) -> Option<ChecksumType> {
    meta.checksums.get("type").filter(|_| asked).map(|t| ChecksumType::from(t.clone()))
}

const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The upload a request describes.
pub(crate) fn upload(h: &http::HeaderMap, user: Option<&Metadata>, claimed: Checksum) -> S3Result<Upload> {
    let tags = match h.get("x-amz-tagging").map(|v| v.to_str()) {
        Some(Ok(v)) => tags::from_header(v)?,
        Some(Err(_)) => return Err(s3_error!(InvalidTag, "x-amz-tagging is not text")),
        None => Default::default(),
    };
    Ok(Upload {
        headers: headers::kept(h),
        user: headers::user(user),
        content_md5: h.get("content-md5").and_then(|v| v.to_str().ok()).map(str::to_string),
        claimed,
        named: headers::named_checksums(h),
        tags,
        ..Default::default()
    })
}

/// `s` as `encoding-type=url` asks: bytes other than unreserved ones and `/` as `%XX`, spaces
/// as `+` (what the SDKs decode).
fn encode_if(url: bool, s: String) -> String {
    if !url {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl<B: Backend> Cairn<B> {
    /// A page of a listing, with each object's ETag.
    async fn listing(&self, bucket: &str, req: list::Request) -> S3Result<(Listing, Vec<Object>)> {
        let dir = store::bucket_dir(self.backend.as_ref(), &bucket_path(bucket)?).await?;
        let page = list::list(self.backend.as_ref(), dir.ino, &req).await.map_err(s3)?;
        let live: Vec<(&String, &Inode)> = page
            .objects
            .iter()
            .filter_map(|item| match item {
                Item::Object { key, inode } => Some((key, inode)),
                _ => None,
            })
            .collect();
        let inodes: Vec<&Inode> = live.iter().map(|(_, i)| *i).collect();
        let records = store::records(self.backend.as_ref(), &inodes).await?;
        let objects = live
            .into_iter()
            .zip(records)
            .map(|((key, inode), record)| {
                let meta = match inode.kind {
                    InodeKind::File => crate::meta::current(inode, record.as_deref()),
                    _ => ObjectMeta { etag: objects::EMPTY_MD5.into(), ..Default::default() },
                };
                Object {
                    key: Some(key.clone()),
                    size: Some(if inode.kind == InodeKind::File { inode.size as i64 } else { 0 }),
                    e_tag: Some(etag(&meta)),
                    last_modified: Some(modified(inode)),
                    storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                    ..Default::default()
                }
            })
            .collect();
        Ok((page, objects))
    }

    /// The object a GET or HEAD names (a version of it, with `version`), once it meets the
    /// request's conditions.
    async fn readable(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&String>,
        cond: Conditions<'_>,
    ) -> S3Result<(Found, ObjectMeta)> {
        let dir = bucket_path(bucket)?;
        let o = object_path(bucket, key)?;
        let (found, meta) = match version {
            Some(v) => versions::get(self.backend.as_ref(), &dir, &o, v).await?,
            None => objects::get(self.backend.as_ref(), &dir, &o).await?,
        };
        cond.check(&meta, &found.inode)?;
        Ok((found, meta))
    }

    /// The source object of a CopyObject or UploadPartCopy (its path, what is there, its
    /// record), which `key` must be allowed to read, and which must meet the
    /// `x-amz-copy-source-if-*` conditions.
    pub(crate) async fn copy_source(
        &self,
        source: &CopySource,
        key: Option<&AccessKey>,
        cond: Conditions<'_>,
    ) -> S3Result<(ObjectPath, Found, ObjectMeta)> {
        let (src_bucket, src_key) = match source {
            CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
            _ => return Err(s3_error!(NotImplemented, "copy sources other than BUCKET/KEY")),
        };
        let src = object_path(&src_bucket, &src_key)?;
        may_read(key, &src.path)?;
        let (found, meta) = objects::get(self.backend.as_ref(), &bucket_path(&src_bucket)?, &src).await?;
        if found.inode.kind != InodeKind::File {
            return Err(s3_error!(InvalidRequest, "the copy source is a folder key"));
        }
        cond.check(&meta, &found.inode).map_err(|_| s3_error!(PreconditionFailed))?;
        Ok((src, found, meta))
    }
}

#[async_trait::async_trait]
impl<B: Backend> S3 for Cairn<B> {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> Out<ListBucketsOutput> {
        let key = req.extensions.get::<AccessKey>().cloned();
        let mut buckets = Vec::new();
        let mut after = None;
        loop {
            let q = Query::List { at: at(&FsPath::root()), after, limit: 1000 };
            let (entries, next) = match self.backend.query(q).await.map_err(s3)? {
                QueryReply::Entries { entries, next } => (entries, next),
                _ => return Err(s3_error!(InternalError, "unexpected answer to a listing")),
            };
            for e in entries {
                let path = FsPath::root().join(&e.name).map_err(crate::errors::path)?;
                let readable = key
                    .as_ref()
                    .is_some_and(|k| k.allows(cairn_core::access::Access::Read, Some(std::slice::from_ref(&path))));
                if e.inode.kind == InodeKind::Dir && s3s::path::check_bucket_name(&e.name) && readable {
                    let created = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(e.inode.ctime.max(0) as u64);
                    buckets.push(Bucket {
                        name: Some(e.name),
                        creation_date: Some(Timestamp::from(created)),
                        ..Default::default()
                    });
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let owner = Owner { display_name: Some("cairn".into()), id: Some("cairn".into()) };
        ok(ListBucketsOutput { buckets: Some(buckets), owner: Some(owner), ..Default::default() })
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> Out<CreateBucketOutput> {
        let path = bucket_path(&req.input.bucket)?;
        let cmd = ClientCommand::Mkdir { at: at(&path), parents: false, attrs: NewAttrs::dir() };
        match self.backend.write(cmd).await {
            Ok(_) => ok(CreateBucketOutput { location: Some(format!("/{}", req.input.bucket)) }),
            Err(e) if e.code() == cairn_core::ErrorCode::Exists => Err(s3_error!(BucketAlreadyOwnedByYou)),
            Err(e) => Err(s3(e)),
        }
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> Out<DeleteBucketOutput> {
        let path = bucket_path(&req.input.bucket)?;
        store::bucket_dir(self.backend.as_ref(), &path).await?;
        match self.backend.write(ClientCommand::Remove { at: at(&path), recursive: false }).await {
            Ok(_) => ok(DeleteBucketOutput {}),
            Err(e) if e.code() == cairn_core::ErrorCode::NotEmpty => Err(s3_error!(BucketNotEmpty)),
            Err(e) if is_not_found(&e) => Err(s3_error!(NoSuchBucket)),
            Err(e) => Err(s3(e)),
        }
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> Out<HeadBucketOutput> {
        store::bucket_dir(self.backend.as_ref(), &bucket_path(&req.input.bucket)?).await?;
        ok(HeadBucketOutput::default())
    }

    async fn get_bucket_location(&self, req: S3Request<GetBucketLocationInput>) -> Out<GetBucketLocationOutput> {
        store::bucket_dir(self.backend.as_ref(), &bucket_path(&req.input.bucket)?).await?;
        ok(GetBucketLocationOutput::default())
    }

    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> Out<PutObjectOutput> {
        let i = &mut req.input;
        let bucket = bucket_path(&i.bucket)?;
        let o = object_path(&i.bucket, &i.key)?;
        let claimed = Checksum {
            checksum_crc32: i.checksum_crc32.take(),
            checksum_crc32c: i.checksum_crc32c.take(),
            checksum_crc64nvme: i.checksum_crc64nvme.take(),
            checksum_sha1: i.checksum_sha1.take(),
            checksum_sha256: i.checksum_sha256.take(),
            ..Default::default()
        };
        let mut up = upload(&req.headers, i.metadata.as_ref(), claimed)?;
        up.trailers = req.trailing_headers.clone();
        up.if_none_match = i.if_none_match.as_ref().is_some_and(ETagCondition::is_any);
        up.if_match = i.if_match.take();
        let (meta, version) = objects::put(&self.backend, &bucket, &o, i.body.take(), up).await?;
        let c = sums::from_map(&meta.checksums);
        ok(PutObjectOutput {
            e_tag: Some(etag(&meta)),
            version_id: (version > 0).then(|| version.to_string()),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            ..Default::default()
        })
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> Out<GetObjectOutput> {
        let i = &req.input;
        let cond = Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        };
        let (found, meta) = self.readable(&i.bucket, &i.key, i.version_id.as_ref(), cond).await?;
        let size = if found.inode.kind == InodeKind::File { found.inode.size } else { 0 };
        let range = match &i.range {
            Some(r) => Some(r.check(size)?),
            None => None,
        };
        let (start, end) = range.clone().map_or((0, size), |r| (r.start, r.end));
        let stream = datapath::read_stream(self.backend.clone(), &found.inode, start, end);
        let full = range.is_none();
        let c = if full && i.checksum_mode.is_some() { sums::from_map(&meta.checksums) } else { Checksum::default() };
        let mut out = GetObjectOutput {
            body: Some(StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream))),
            content_length: Some((end - start) as i64),
            content_range: range.map(|r| format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1))),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&meta)),
            last_modified: Some(modified(&found.inode)),
            version_id: Some(found.inode.version.to_string()),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_type: checksum_type(&meta, full && i.checksum_mode.is_some()),
            ..Default::default()
        };
        if meta.parts > 0 {
            out.parts_count = Some(meta.parts as i32);
        }
        if !meta.tags.is_empty() {
            out.tag_count = Some(meta.tags.len() as i32);
        }
        let mut resp = S3Response::new(out);
        headers::send(&meta, &mut resp.headers);
        if !full {
            resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
        }
        Ok(resp)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> Out<HeadObjectOutput> {
        let i = &req.input;
        let cond = Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        };
        let (found, meta) = self.readable(&i.bucket, &i.key, i.version_id.as_ref(), cond).await?;
        let size = if found.inode.kind == InodeKind::File { found.inode.size } else { 0 };
        let c = if i.checksum_mode.is_some() { sums::from_map(&meta.checksums) } else { Checksum::default() };
        let out = HeadObjectOutput {
            content_length: Some(size as i64),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&meta)),
            last_modified: Some(modified(&found.inode)),
            parts_count: (meta.parts > 0).then_some(meta.parts as i32),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_type: checksum_type(&meta, i.checksum_mode.is_some()),
            ..Default::default()
        };
        let mut resp = S3Response::new(out);
        headers::send(&meta, &mut resp.headers);
        Ok(resp)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> Out<DeleteObjectOutput> {
        let bucket = bucket_path(&req.input.bucket)?;
        let o = object_path(&req.input.bucket, &req.input.key)?;
        let out = match &req.input.version_id {
            Some(v) => {
                let marker = versions::delete(self.backend.as_ref(), &bucket, &o, v).await?;
                DeleteObjectOutput {
                    delete_marker: marker.then_some(true),
                    version_id: Some(v.clone()),
                    ..Default::default()
                }
            }
            None => match objects::delete(self.backend.as_ref(), &bucket, &o).await? {
                Some(mark) => DeleteObjectOutput {
                    delete_marker: Some(true),
                    version_id: Some(mark.to_string()),
                    ..Default::default()
                },
                None => DeleteObjectOutput::default(),
            },
        };
        let mut resp = S3Response::new(out);
        resp.status = Some(http::StatusCode::NO_CONTENT);
        Ok(resp)
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> Out<DeleteObjectsOutput> {
        let i = &req.input;
        let bucket = bucket_path(&i.bucket)?;
        store::bucket_dir(self.backend.as_ref(), &bucket).await?;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "at most 1000 keys per DeleteObjects"));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for id in &i.delete.objects {
            let done = match (object_path(&i.bucket, &id.key), &id.version_id) {
                (Ok(o), None) => objects::delete(self.backend.as_ref(), &bucket, &o).await,
                (Ok(o), Some(v)) => versions::delete(self.backend.as_ref(), &bucket, &o, v).await.map(|_| None),
                (Err(e), _) => Err(e),
            };
            match done {
                Ok(marker) if !quiet => deleted.push(DeletedObject {
                    key: Some(id.key.clone()),
                    version_id: id.version_id.clone(),
                    delete_marker: marker.map(|_| true),
                    delete_marker_version_id: marker.map(|v| v.to_string()),
                }),
                Ok(_) => {}
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(id.key.clone()),
                    message: e.message().map(str::to_string),
                    ..Default::default()
                }),
            }
        }
        ok(DeleteObjectsOutput { deleted: Some(deleted), errors: Some(errors), ..Default::default() })
    }

    async fn copy_object(&self, mut req: S3Request<CopyObjectInput>) -> Out<CopyObjectOutput> {
        let i = &req.input;
        let cond = Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        };
        let (src, found, src_meta) = self.copy_source(&i.copy_source, req.extensions.get::<AccessKey>(), cond).await?;
        let i = &mut req.input;
        let replace = i.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let mut up = upload(&req.headers, i.metadata.as_ref(), Checksum::default())?;
        let mut meta = if replace {
            ObjectMeta::check_user(&up.user)?;
            ObjectMeta { headers: std::mem::take(&mut up.headers), user: std::mem::take(&mut up.user), ..src_meta }
        } else {
            src_meta
        };
        if i.tagging_directive.as_ref().is_some_and(|d| d.as_str() == TaggingDirective::REPLACE) {
            meta.tags = std::mem::take(&mut up.tags);
        }
        let bucket = bucket_path(&i.bucket)?;
        let o = object_path(&i.bucket, &i.key)?;
        if o.path == src.path && !replace {
            return Err(s3_error!(
                InvalidRequest,
                "copying an object onto itself without changing its metadata is not allowed"
            ));
        }
        let (meta, inode) = objects::copy(self.backend.as_ref(), &bucket, &o, &found, meta, &up).await?;
        let result =
            CopyObjectResult { e_tag: Some(etag(&meta)), last_modified: Some(modified(&inode)), ..Default::default() };
        ok(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() })
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> Out<ListObjectsV2Output> {
        let i = req.input;
        let after = match &i.continuation_token {
            Some(t) => {
                let raw = TOKEN.decode(t).map_err(|_| s3_error!(InvalidArgument, "bad continuation token"))?;
                Some(String::from_utf8(raw).map_err(|_| s3_error!(InvalidArgument, "bad continuation token"))?)
            }
            None => i.start_after.clone(),
        };
        let max = i.max_keys.map_or(MAX_KEYS, |m| (m.max(0) as usize).min(MAX_KEYS));
        let r = list::Request {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after,
            max,
            with_graves: false,
        };
        let (page, objects) = self.listing(&i.bucket, r).await?;
        let url = i.encoding_type.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL);
        let next = page.truncated.then(|| page.last.as_ref().map(|l| TOKEN.encode(l))).flatten();
        let count = objects.len() + page.prefixes.len();
        ok(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(encode_if(url, i.prefix.unwrap_or_default())),
            delimiter: i.delimiter.map(|d| encode_if(url, d)),
            max_keys: Some(max as i32),
            key_count: Some(count as i32),
            continuation_token: i.continuation_token,
            next_continuation_token: next,
            start_after: i.start_after.map(|s| encode_if(url, s)),
            is_truncated: Some(page.truncated),
            contents: Some(
                objects.into_iter().map(|o| Object { key: o.key.map(|k| encode_if(url, k)), ..o }).collect(),
            ),
            common_prefixes: Some(
                page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(encode_if(url, p)) }).collect(),
            ),
            encoding_type: i.encoding_type,
            ..Default::default()
        })
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> Out<ListObjectsOutput> {
        let i = req.input;
        let max = i.max_keys.map_or(MAX_KEYS, |m| (m.max(0) as usize).min(MAX_KEYS));
        let r = list::Request {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after: i.marker.clone().filter(|m| !m.is_empty()),
            max,
            with_graves: false,
        };
        let (page, objects) = self.listing(&i.bucket, r).await?;
        let url = i.encoding_type.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL);
        let next = (page.truncated && i.delimiter.is_some()).then(|| page.last.clone()).flatten();
        ok(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(encode_if(url, i.prefix.unwrap_or_default())),
            marker: Some(encode_if(url, i.marker.unwrap_or_default())),
            delimiter: i.delimiter.map(|d| encode_if(url, d)),
            max_keys: Some(max as i32),
            is_truncated: Some(page.truncated),
            next_marker: next.map(|n| encode_if(url, n)),
            contents: Some(
                objects.into_iter().map(|o| Object { key: o.key.map(|k| encode_if(url, k)), ..o }).collect(),
            ),
            common_prefixes: Some(
                page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(encode_if(url, p)) }).collect(),
            ),
            encoding_type: i.encoding_type,
            ..Default::default()
        })
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> Out<CreateMultipartUploadOutput> {
        self.mpu_create(req).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> Out<UploadPartOutput> {
        self.mpu_part(req).await
    }

    async fn upload_part_copy(&self, req: S3Request<UploadPartCopyInput>) -> Out<UploadPartCopyOutput> {
        self.mpu_part_copy(req).await
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> Out<ListPartsOutput> {
        self.mpu_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> Out<CompleteMultipartUploadOutput> {
        self.mpu_complete(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> Out<AbortMultipartUploadOutput> {
        self.mpu_abort(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> Out<ListMultipartUploadsOutput> {
        self.mpu_list(req).await
    }

    async fn get_object_tagging(&self, req: S3Request<GetObjectTaggingInput>) -> Out<GetObjectTaggingOutput> {
        let t = tags::get(self.backend.as_ref(), &req.input.bucket, &req.input.key).await?;
        ok(GetObjectTaggingOutput { tag_set: tags::to_set(&t), version_id: None })
    }

    async fn put_object_tagging(&self, req: S3Request<PutObjectTaggingInput>) -> Out<PutObjectTaggingOutput> {
        let i = req.input;
        let t = tags::from_set(i.tagging.tag_set)?;
        tags::set(self.backend.as_ref(), &i.bucket, &i.key, t).await?;
        ok(PutObjectTaggingOutput { version_id: None })
    }

    async fn delete_object_tagging(&self, req: S3Request<DeleteObjectTaggingInput>) -> Out<DeleteObjectTaggingOutput> {
        tags::set(self.backend.as_ref(), &req.input.bucket, &req.input.key, Default::default()).await?;
        let mut resp = S3Response::new(DeleteObjectTaggingOutput { version_id: None });
        resp.status = Some(http::StatusCode::NO_CONTENT);
        Ok(resp)
    }

    async fn get_bucket_versioning(&self, req: S3Request<GetBucketVersioningInput>) -> Out<GetBucketVersioningOutput> {
        self.versioning_get(req).await
    }

    async fn put_bucket_versioning(&self, req: S3Request<PutBucketVersioningInput>) -> Out<PutBucketVersioningOutput> {
        self.versioning_put(req).await
    }

    async fn list_object_versions(&self, req: S3Request<ListObjectVersionsInput>) -> Out<ListObjectVersionsOutput> {
        self.versions_list(req).await
    }
}
