//! The public REST file API under `/v1/fs/{path}` (WebHDFS-like): reads, listings, writes
//! and deletes here, the `POST` operations in `rest_ops`. Every handler is a thin adapter
//! over the client data path run on the node's [`crate::LocalBackend`].

use super::{query_params, AppState, HttpError};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_client::datapath::{self, WriteOptions};
use cairn_client::json::inode_json;
use cairn_client::{edit, Backend};
use cairn_core::wire::{
    ClientCommand, DirEntry, Inode, InodeKind, Query as MetaQuery, QueryReply, Target, LIST_DEFAULT,
};
use cairn_core::{ApiError, ErrorCode, FsPath};
use futures::stream::{self, StreamExt};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{json, Value};

/// Query parameters of `/v1/fs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsParams {
    pub(super) op: Option<String>,
    pub(super) recursive: Option<bool>,
    pub(super) parents: Option<bool>,
    pub(super) to: Option<String>,
    pub(super) policy: Option<String>,
    pub(super) chunk_size: Option<u32>,
    pub(super) target: Option<String>,
    /// `PUT ?offset=N`: write the body at N into the existing file.
    pub(super) offset: Option<u64>,
    /// `op=truncate&size=N`.
    pub(super) size: Option<u64>,
    /// `op=setattr`: permission bits in octal (`0640`).
    pub(super) mode: Option<String>,
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
    /// `op=setattr`: seconds since the epoch.
    pub(super) atime: Option<i64>,
    pub(super) mtime: Option<i64>,
    /// `op=xattr`: the attribute's name; `flag=create|replace` as `XATTR_CREATE|REPLACE`.
    pub(super) name: Option<String>,
    pub(super) flag: Option<String>,
    /// `op=concat`: comma-separated source paths.
    pub(super) sources: Option<String>,
    /// Listings: page size and cursor.
    pub(super) limit: Option<u32>,
    pub(super) after: Option<String>,
    /// `GET ?version=V`: that version's bytes; `POST ?op=restore&version=V`.
    pub(super) version: Option<u64>,
    /// `POST ?op=policy&versions=N`: earlier versions each file below keeps.
    pub(super) versions: Option<u32>,
}

pub(super) type Params = Result<Query<FsParams>, QueryRejection>;

pub(super) fn bad(msg: impl Into<String>) -> HttpError {
    HttpError(ApiError::new(ErrorCode::InvalidArgument, msg))
}

/// The cairn path named by a request URI. Each segment is percent-decoded on its own, so an
/// encoded `/` (`%2F`) inside a name is refused rather than read as a separator.
pub(super) fn fs_path(uri: &Uri) -> Result<FsPath, HttpError> {
    let raw = uri.path().strip_prefix("/v1/fs").unwrap_or("");
    let mut path = FsPath::root();
    for seg in raw.split('/').filter(|s| !s.is_empty()) {
        let bytes: Vec<u8> = percent_decode_str(seg).collect();
        let name = std::str::from_utf8(&bytes).map_err(|_| bad("path is not valid UTF-8"))?;
        path = path.join(name)?;
    }
    Ok(path)
}

fn listing_json(path: &FsPath, entries: &[DirEntry], next: Option<String>) -> Result<Value, HttpError> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        out.push(inode_json(&path.join(&e.name)?, &e.inode));
    }
    Ok(json!({ "path": path.to_string(), "entries": out, "next": next.map(|n| cursor(&n)) }))
}

/// The opaque cursor of a listing page: the last name, hex-encoded.
fn cursor(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The name a cursor stands for, checked like any name.
fn parse_cursor(c: &str) -> Result<String, HttpError> {
    let invalid = || bad("after is not a cursor from a listing's next");
    if !c.len().is_multiple_of(2) || c.len() > 2 * cairn_core::path::NAME_MAX {
        return Err(invalid());
    }
    let bytes: Vec<u8> = (0..c.len())
        .step_by(2)
        .map(|i| c.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;
    let name = String::from_utf8(bytes).map_err(|_| invalid())?;
    cairn_core::validate_name(&name).map_err(|_| invalid())?;
    Ok(name)
}

pub(super) async fn stat(st: &AppState, path: &FsPath) -> Result<Inode, HttpError> {
    Ok(datapath::stat(st.backend.as_ref(), &Target::Path(path.clone())).await?)
}

/// A parsed `Range` header: `Ok(None)` means serve the whole file.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE) else { return Ok(None) };
    let v = v.to_str().map_err(drop)?;
    let Some(spec) = v.strip_prefix("bytes=") else { return Ok(None) }; // unknown unit: ignore
    if spec.contains(',') {
        return Ok(None); // multiple ranges: allowed to answer with the whole file
    }
    let (a, b) = spec.trim().split_once('-').ok_or(())?;
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Err(()),
        (true, false) => {
            let n: u64 = b.parse().map_err(drop)?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size)
        }
        (false, _) => {
            let s: u64 = a.parse().map_err(drop)?;
            let e = if b.is_empty() { size } else { b.parse::<u64>().map_err(drop)?.saturating_add(1).min(size) };
            (s, e)
        }
    };
    if start >= size || start >= end {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn file_headers(inode: &Inode, len: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&inode.etag()) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(cairn_client::json::time(inode.mtime))) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert("x-cairn-type", HeaderValue::from_static(inode.kind.as_str()));
    h
}

/// Serves a file, whole or one range; `head` sends the headers only.
async fn serve_file(st: &AppState, inode: Inode, headers: &HeaderMap, head: bool) -> Result<Response, HttpError> {
    let (status, start, end) = match parse_range(headers, inode.size) {
        Ok(None) => (StatusCode::OK, 0, inode.size),
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Err(()) => {
            let mut resp = HttpError(ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("range not satisfiable for a file of {} bytes", inode.size),
            ))
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", inode.size)) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
    };
    let mut h = file_headers(&inode, end - start);
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end - 1, inode.size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if head {
        return Ok((status, h).into_response());
    }
    let mut body = Box::pin(datapath::read_stream(st.backend.clone(), &inode, start, end));
    // Fetch the first piece before answering, so a failure becomes a proper error response.
    let first = body.next().await.transpose()?;
    let rest = stream::iter(first.map(Ok)).chain(body).map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
    Ok((status, h, Body::from_stream(rest)).into_response())
}

/// `GET /v1/fs/{path}`: a file's bytes (with `Range`), a directory's listing, or `?op=stat`.
pub async fn get(State(st): State<AppState>, uri: Uri, p: Params, headers: HeaderMap) -> Result<Response, HttpError> {
    let path = fs_path(&uri)?;
    let p = query_params(p)?;
    match p.op.as_deref() {
        Some("stat") => return Ok(Json(inode_json(&path, &stat(&st, &path).await?)).into_response()),
        Some("xattr" | "xattrs") => return super::rest_ops::get_xattr(&st, &path, &p).await,
        Some("versions") => return super::rest_ops::versions(&st, &path).await,
        Some(op) => return Err(bad(format!("unknown GET op {op:?} (expected stat, xattr, xattrs or versions)"))),
        None => {}
    }
    if let Some(version) = p.version {
        let q = MetaQuery::Version { at: Target::Path(path.clone()), version };
        return match st.backend.query(q).await? {
            QueryReply::Inode(inode) => serve_file(&st, inode, &headers, false).await,
            _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to a version query"))),
        };
    }
    let inode = stat(&st, &path).await?;
    match inode.kind {
        InodeKind::File => serve_file(&st, inode, &headers, false).await,
        InodeKind::Dir => {
            let after = p.after.as_deref().map(parse_cursor).transpose()?;
            let limit = p.limit.unwrap_or(LIST_DEFAULT);
            if limit == 0 || limit > cairn_core::wire::LIST_MAX {
                return Err(bad(format!("limit must be 1..={}", cairn_core::wire::LIST_MAX)));
            }
            match st.backend.query(MetaQuery::List { at: Target::Ino(inode.ino), after, limit }).await? {
                QueryReply::Entries { entries, next } => Ok(Json(listing_json(&path, &entries, next)?).into_response()),
                _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to a listing"))),
            }
        }
        InodeKind::Symlink => Ok(Json(inode_json(&path, &inode)).into_response()),
    }
}

/// `HEAD /v1/fs/{path}`: size, type, mtime and ETag.
pub async fn head(State(st): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, HttpError> {
    let path = fs_path(&uri)?;
    let inode = stat(&st, &path).await?;
    match inode.kind {
        InodeKind::File => serve_file(&st, inode, &headers, true).await,
        _ => {
            let mut h = file_headers(&inode, 0);
            h.remove(header::CONTENT_LENGTH);
            h.remove(header::ACCEPT_RANGES);
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert("x-cairn-size", HeaderValue::from(inode.size));
            Ok((StatusCode::OK, h).into_response())
        }
    }
}

/// `PUT /v1/fs/{path}`: create or atomically replace a file from the streamed body;
/// `?offset=N` writes the body at N into the existing file instead; `?op=xattr&name=N` sets
/// an extended attribute to the body.
pub async fn put(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    p: Params,
    body: Body,
) -> Result<Response, HttpError> {
    let path = fs_path(&uri)?;
    let p = query_params(p)?;
    // Refused before the body is read, which cuts the client off mid-send; below DRAIN_MAX a
    // refusal comes after the body was read instead, so every client gets to see it.
    if let Some(len) = content_length(&headers)?.filter(|len| *len > DRAIN_MAX) {
        st.node.chunks.admit_upload(len)?;
    }
    let b = super::conditions::backend(&st, &headers)?;
    match p.op.as_deref() {
        Some("xattr") => return super::rest_ops::put_xattr(b.as_ref(), &path, &p, body).await,
        Some(op) => return Err(bad(format!("unknown PUT op {op:?} (expected xattr, or none)"))),
        None => {}
    }
    let _slot = upload_slot(&st)?;
    let mut body = body.into_data_stream();
    let at = Target::Path(path.clone());
    let written = match p.offset {
        Some(offset) => edit::write_at(&b, &at, Some(offset), &mut body).await,
        None => {
            let opts = WriteOptions {
                parents: p.parents.unwrap_or(true),
                chunk_size: p.chunk_size,
                ..WriteOptions::default()
            };
            datapath::write_stream(&b, &at, &mut body, opts).await
        }
    };
    let status = if p.offset.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    match written {
        Ok(inode) => Ok((status, etag_header(&inode), Json(inode_json(&path, &inode))).into_response()),
        Err(e) => {
            drain(&mut body).await;
            Err(e.into())
        }
    }
}

/// The `ETag` header of a write's answer: the new version, for the next conditional write.
pub(super) fn etag_header(inode: &Inode) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&inode.etag()) {
        h.insert(header::ETAG, v);
    }
    h
}

/// A place for one client upload, or `unavailable` while the node has too many in flight.
pub(super) fn upload_slot(st: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, HttpError> {
    st.uploads
        .clone()
        .try_acquire_owned()
        .map_err(|_| HttpError(ApiError::new(ErrorCode::Unavailable, "too many uploads in flight on this node; retry")))
}

/// The request's declared body length, if it declares one.
pub(super) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HttpError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v.to_str().ok().and_then(|v| v.parse().ok()).map(Some).ok_or_else(|| bad("bad Content-Length")),
    }
}

/// Most of a refused upload's remaining body read (and dropped) before answering.
const DRAIN_MAX: u64 = 64 << 20;

/// Reads what is left of a refused upload (up to [`DRAIN_MAX`], for at most a few seconds)
/// so the client, still sending, gets to read the error instead of a reset connection.
pub(super) async fn drain(body: &mut axum::body::BodyDataStream) {
    let mut left = DRAIN_MAX;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(piece)) = body.next().await {
            left = left.saturating_sub(piece.len() as u64);
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

/// `DELETE /v1/fs/{path}[?recursive=true]`; `?op=xattr&name=N` removes an attribute.
pub async fn delete(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    p: Params,
) -> Result<StatusCode, HttpError> {
    let path = fs_path(&uri)?;
    let p = query_params(p)?;
    let b = super::conditions::backend(&st, &headers)?;
    match p.op.as_deref() {
        Some("xattr") => {
            let name = p.name.ok_or_else(|| bad("op=xattr needs ?name="))?;
            b.write(ClientCommand::RemoveXattr { at: Target::Path(path), name }).await?;
        }
        Some(op) => return Err(bad(format!("unknown DELETE op {op:?} (expected xattr, or none)"))),
        None => {
            let at = Target::Path(path);
            b.write(ClientCommand::Remove { at, recursive: p.recursive.unwrap_or(false) }).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod fuzz {
    use super::parse_range;
    use axum::http::{header, HeaderMap, HeaderValue};
    use proptest::prelude::*;

    /// Any `Range` header against any size: never a panic, and an accepted range lies
    /// inside the file and is not empty.
    fn range(bytes: &[u8], size: u64) {
        let Ok(value) = HeaderValue::from_bytes(bytes) else { return };
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, value);
        if let Ok(Some((start, end))) = parse_range(&headers, size) {
            assert!(start < end && end <= size, "{start}..{end} of {size}");
        }
    }

    #[test]
    fn fuzz_seeds_range() {
        for seed in cairn_core::fuzzing::corpus("range") {
            for size in [0, 1, 5, 1 << 40, u64::MAX] {
                range(&seed, size);
            }
        }
    }

    proptest! {
        #[test]
        fn fuzz_range(bytes in proptest::collection::vec(any::<u8>(), 0..64), size in any::<u64>()) {
            range(&bytes, size);
        }

        #[test]
        fn fuzz_range_text(s in "bytes=[0-9]{0,22}-[0-9]{0,22}", size in prop_oneof![Just(0u64), 0..100u64, any::<u64>()]) {
            range(s.as_bytes(), size);
        }
    }
}
