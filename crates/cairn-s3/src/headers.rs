//! The standard headers an object keeps (`Content-Type` and the like), read from a request
//! and sent back on GET and HEAD; user metadata (`x-amz-meta-*`).

use crate::meta::ObjectMeta;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;

/// The headers kept with an object, as S3 keeps them.
const KEPT: [&str; 6] =
    ["content-type", "cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

/// The standard headers of a request worth keeping. `aws-chunked` is the upload's framing,
/// not the object's encoding: it is dropped from `Content-Encoding`.
pub fn kept(h: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in KEPT {
        let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) else { continue };
        let v = if name == "content-encoding" {
            let rest: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            rest.join(", ")
        } else {
            v.to_string()
        };
        if !v.is_empty() && v.len() <= 1024 {
            out.insert(name.to_string(), v);
        }
    }
    out
}

/// Adds an object's kept headers and user metadata to a response's headers.
pub fn send(meta: &ObjectMeta, out: &mut HeaderMap) {
    let pairs = meta
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v))
        .chain(meta.user.iter().map(|(k, v)| (format!("x-amz-meta-{k}"), v)));
    for (k, v) in pairs {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k), HeaderValue::from_str(v)) {
            out.insert(name, value);
        }
    }
    if !meta.headers.contains_key("content-type") {
        out.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("binary/octet-stream"));
    }
}

/// User metadata from s3s's parsed map, names in lower case.
pub fn user(m: Option<&s3s::dto::Metadata>) -> BTreeMap<String, String> {
    m.map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect()).unwrap_or_default()
}

/// The checksum algorithms a request names: `x-amz-sdk-checksum-algorithm` and the
/// `x-amz-checksum-*` names listed in `x-amz-trailer`.
pub fn named_checksums(h: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = h.get("x-amz-sdk-checksum-algorithm").and_then(|v| v.to_str().ok()) {
        out.push(v.to_ascii_lowercase());
    }
    if let Some(v) = h.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        for t in v.split(',') {
            if let Some(alg) = t.trim().to_ascii_lowercase().strip_prefix("x-amz-checksum-") {
                out.push(alg.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_framing_is_not_kept_as_the_objects_encoding() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", HeaderValue::from_static("aws-chunked"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("x-amz-trailer", HeaderValue::from_static("x-amz-checksum-crc64nvme"));
        let k = kept(&h);
        assert_eq!(k.get("content-type").map(String::as_str), Some("text/plain"));
        assert!(!k.contains_key("content-encoding"));
        assert_eq!(named_checksums(&h), vec!["crc64nvme".to_string()]);
        h.insert("content-encoding", HeaderValue::from_static("gzip, aws-chunked"));
        assert_eq!(kept(&h).get("content-encoding").map(String::as_str), Some("gzip"));
    }
}
