//! The multipart operations of the S3 API, decoded and encoded around [`crate::multipart`].

use crate::multipart::{self, Completion, MAX_PARTS};
use crate::objects::{self, etag, modified};
use crate::service::{upload, Cairn};
use crate::sums;
use cairn_client::Backend;
use cairn_core::access::AccessKey;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use std::time::{Duration, UNIX_EPOCH};

type Out<T> = S3Result<S3Response<T>>;

impl<B: Backend> Cairn<B> {
    pub(crate) async fn mpu_create(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> Out<CreateMultipartUploadOutput> {
        let i = &req.input;
        let up = upload(&req.headers, i.metadata.as_ref(), Checksum::default())?;
        let algorithm = i.checksum_algorithm.as_ref().map(|a| a.as_str().to_ascii_lowercase());
        let full_object = match &i.checksum_type {
            Some(t) => t.as_str() == ChecksumType::FULL_OBJECT,
            None => algorithm.as_deref() == Some("crc64nvme"),
        };
        if let Some(alg) = &algorithm {
            if !sums::combinable(alg, full_object) {
                return Err(s3_error!(
                    InvalidRequest,
                    "{alg} cannot be a {} checksum",
                    if full_object { "FULL_OBJECT" } else { "COMPOSITE" }
                ));
            }
        }
        let sum = multipart::Checksumming { algorithm, full_object };
        let id = multipart::create(self.backend.as_ref(), &i.bucket, &i.key, &up, sum.clone()).await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(id),
            checksum_algorithm: i.checksum_algorithm.clone(),
            checksum_type: sum.algorithm.map(|_| {
                ChecksumType::from_static(if sum.full_object {
                    ChecksumType::FULL_OBJECT
                } else {
                    ChecksumType::COMPOSITE
                })
            }),
            ..Default::default()
        }))
    }

    pub(crate) async fn mpu_part(&self, mut req: S3Request<UploadPartInput>) -> Out<UploadPartOutput> {
        let i = &mut req.input;
        let claimed = Checksum {
            checksum_crc32: i.checksum_crc32.take(),
            checksum_crc32c: i.checksum_crc32c.take(),
            checksum_crc64nvme: i.checksum_crc64nvme.take(),
            checksum_sha1: i.checksum_sha1.take(),
            checksum_sha256: i.checksum_sha256.take(),
            ..Default::default()
        };
        let mut up = upload(&req.headers, None, claimed)?;
        up.trailers = req.trailing_headers.clone();
        let body = i.body.take().ok_or_else(|| s3_error!(IncompleteBody, "a part needs a body"))?;
        let meta =
            multipart::upload_part(&self.backend, &i.bucket, &i.key, &i.upload_id, i.part_number, body, up).await?;
        let c = sums::from_map(&meta.checksums);
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&meta)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            ..Default::default()
        }))
    }

    pub(crate) async fn mpu_part_copy(&self, req: S3Request<UploadPartCopyInput>) -> Out<UploadPartCopyOutput> {
        let i = &req.input;
        let cond = objects::Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        };
        let (_, found, _) = self.copy_source(&i.copy_source, req.extensions.get::<AccessKey>(), cond).await?;
        let range = match &i.copy_source_range {
            Some(r) => {
                let r = Range::parse(r).map_err(|_| s3_error!(InvalidArgument, "bad x-amz-copy-source-range"))?;
                Some(r.check(found.inode.size).map_err(|_| s3_error!(InvalidRange))?)
            }
            None => None,
        };
        let (meta, inode) =
            multipart::copy_part(self.backend.as_ref(), &i.bucket, &i.key, &i.upload_id, i.part_number, &found, range)
                .await?;
        let result =
            CopyPartResult { e_tag: Some(etag(&meta)), last_modified: Some(modified(&inode)), ..Default::default() };
        Ok(S3Response::new(UploadPartCopyOutput { copy_part_result: Some(result), ..Default::default() }))
    }

    pub(crate) async fn mpu_parts(&self, req: S3Request<ListPartsInput>) -> Out<ListPartsOutput> {
        let i = &req.input;
        let after = i.part_number_marker.unwrap_or(0);
        let max = i.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
        let (parts, more) =
            multipart::parts(self.backend.as_ref(), &i.bucket, &i.key, &i.upload_id, after, max).await?;
        let next = if more { parts.last().map(|p| p.number) } else { None };
        let parts = parts
            .into_iter()
            .map(|p| {
                let c = sums::from_map(&p.meta.checksums);
                Part {
                    part_number: Some(p.number),
                    e_tag: Some(etag(&p.meta)),
                    size: Some(p.inode.size as i64),
                    last_modified: Some(modified(&p.inode)),
                    checksum_crc32: c.checksum_crc32,
                    checksum_crc32c: c.checksum_crc32c,
                    checksum_crc64nvme: c.checksum_crc64nvme,
                    checksum_sha1: c.checksum_sha1,
                    checksum_sha256: c.checksum_sha256,
                }
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(i.upload_id.clone()),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: next,
            max_parts: Some(max as i32),
            is_truncated: Some(more),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    pub(crate) async fn mpu_complete(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> Out<CompleteMultipartUploadOutput> {
        let i = &mut req.input;
        let listed = i.multipart_upload.take().and_then(|m| m.parts).unwrap_or_default();
        if listed.len() > MAX_PARTS as usize {
            return Err(s3_error!(MalformedXML, "more than {MAX_PARTS} parts"));
        }
        let mut parts = Vec::with_capacity(listed.len());
        for p in listed {
            let n = p.part_number.ok_or_else(|| s3_error!(MalformedXML, "a part without a number"))?;
            let e = p.e_tag.ok_or_else(|| s3_error!(MalformedXML, "a part without an ETag"))?;
            parts.push((n, e.value().to_string()));
        }
        let claimed = Checksum {
            checksum_crc32: i.checksum_crc32.take(),
            checksum_crc32c: i.checksum_crc32c.take(),
            checksum_crc64nvme: i.checksum_crc64nvme.take(),
            checksum_sha1: i.checksum_sha1.take(),
            checksum_sha256: i.checksum_sha256.take(),
            ..Default::default()
        };
        let c = Completion {
            parts,
            if_none_match: i.if_none_match.as_ref().is_some_and(ETagCondition::is_any),
            if_match: i.if_match.take(),
            claimed,
        };
        let meta = multipart::complete(self.backend.as_ref(), &i.bucket, &i.key, &i.upload_id, c).await?;
        let sums = sums::from_map(&meta.checksums);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&meta)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: meta.checksums.get("type").map(|t| ChecksumType::from(t.clone())),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            ..Default::default()
        }))
    }

    pub(crate) async fn mpu_abort(&self, req: S3Request<AbortMultipartUploadInput>) -> Out<AbortMultipartUploadOutput> {
        let i = &req.input;
        multipart::abort(self.backend.as_ref(), &i.bucket, &i.key, &i.upload_id).await?;
        let mut resp = S3Response::new(AbortMultipartUploadOutput::default());
        resp.status = Some(http::StatusCode::NO_CONTENT);
        Ok(resp)
    }

    pub(crate) async fn mpu_list(&self, req: S3Request<ListMultipartUploadsInput>) -> Out<ListMultipartUploadsOutput> {
        let i = &req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = i.max_uploads.map_or(1000, |m| m.clamp(0, 1000) as usize);
        let (all, _) = multipart::uploads(self.backend.as_ref(), &i.bucket, &prefix, usize::MAX).await?;
        let key_marker = i.key_marker.clone().unwrap_or_default();
        let id_marker = i.upload_id_marker.clone().unwrap_or_default();
        let mut after: Vec<_> = all
            .into_iter()
            .filter(|(k, id, _)| key_marker.is_empty() || *k > key_marker || (*k == key_marker && *id > id_marker))
            .collect();
        let more = after.len() > max;
        after.truncate(max);
        let next = if more { after.last().map(|(k, id, _)| (k.clone(), id.clone())) } else { None };
        let uploads = after
            .into_iter()
            .map(|(key, id, created)| MultipartUpload {
                key: Some(key),
                upload_id: Some(id),
                initiated: Some(Timestamp::from(UNIX_EPOCH + Duration::from_nanos(created.max(0) as u64))),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket.clone()),
            prefix: i.prefix.clone(),
            key_marker: i.key_marker.clone(),
            upload_id_marker: i.upload_id_marker.clone(),
            max_uploads: Some(max as i32),
            is_truncated: Some(more),
            next_key_marker: next.as_ref().map(|n| n.0.clone()),
            next_upload_id_marker: next.map(|n| n.1),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
