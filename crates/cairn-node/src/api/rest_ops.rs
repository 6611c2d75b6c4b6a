//! The `POST /v1/fs/{path}?op=...` operations (mkdir, rename, policy, symlink, link, setattr,
//! truncate, append, concat) and extended attributes (`?op=xattr`, `?op=xattrs`).

use super::rest::{bad, drain, fs_path, FsParams, Params};
use super::{query_params, AppState, HttpError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_client::json::inode_json;
use cairn_client::{edit, Backend};
use cairn_core::wire::{
    ClientCommand, NewAttrs, Query as MetaQuery, QueryReply, Reply, SetAttrs, Target, XattrMode, XATTR_VALUE_MAX,
};
use cairn_core::{ApiError, ErrorCode, FsPath, Policy};
use serde_json::json;

/// Seconds since the epoch as nanoseconds, refusing times out of range.
fn secs(v: Option<i64>, what: &str) -> Result<Option<i64>, HttpError> {
    v.map(|s| s.checked_mul(1_000_000_000).ok_or_else(|| bad(format!("{what} out of range")))).transpose()
}

/// The attribute changes of `?op=setattr`.
fn set_attrs(p: &FsParams) -> Result<SetAttrs, HttpError> {
    let mode = p
        .mode
        .as_deref()
        .map(|m| {
            u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| bad("mode is octal, at most 7777"))
        })
        .transpose()?;
    let attrs = SetAttrs {
        mode,
        uid: p.uid,
        gid: p.gid,
        atime: secs(p.atime, "atime")?,
        mtime: secs(p.mtime, "mtime")?,
        size: None,
    };
    if attrs == SetAttrs::default() {
        return Err(bad("setattr needs one of mode, uid, gid, atime, mtime"));
    }
    Ok(attrs)
}

fn parse_path(s: &str) -> Result<Target, HttpError> {
    Ok(Target::Path(FsPath::parse(s)?))
}

/// `POST /v1/fs/{path}?op=mkdir[&parents=true]`, `?op=rename&to=/new/path`,
/// `?op=policy[&policy=replicas:N][&chunk_size=BYTES]`, `?op=symlink&target=T`,
/// `?op=link&to=/b` (b becomes a second name), `?op=setattr&mode=&uid=&gid=&atime=&mtime=`,
/// `?op=truncate&size=N`, `?op=append` (the body), `?op=concat&sources=/a,/b`,
/// `?op=restore&version=V`; `?op=policy&policy=versions:N` keeps N versions below a directory.
pub async fn post(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    p: Params,
    body: Body,
) -> Result<Response, HttpError> {
    let path = fs_path(&uri)?;
    let p = query_params(p)?;
    let at = Target::Path(path.clone());
    let guarded = super::conditions::backend(&st, &headers)?;
    let b = guarded.as_ref();
    let (status, inode, shown) =
        match p.op.as_deref() {
            Some("append") => {
                let _slot = super::rest::upload_slot(&st)?;
                let mut body = body.into_data_stream();
                match edit::write_at(&guarded, &at, None, &mut body).await {
                    Ok(inode) => (StatusCode::OK, inode, path),
                    Err(e) => {
                        drain(&mut body).await;
                        return Err(e.into());
                    }
                }
            }
            Some("truncate") => {
                let size = p.size.ok_or_else(|| bad("truncate needs ?size=N"))?;
                (StatusCode::OK, edit::truncate(b, &at, size).await?, path)
            }
            Some("setattr") => (StatusCode::OK, edit::set_attr(b, &at, set_attrs(&p)?).await?, path),
            Some("concat") => {
                let sources = p.sources.as_deref().ok_or_else(|| bad("concat needs ?sources=/a,/b"))?;
                let sources = sources.split(',').map(parse_path).collect::<Result<Vec<_>, _>>()?;
                (StatusCode::OK, edit::concat(b, &at, &sources).await?, path)
            }
            Some(op) => {
                let (status, cmd, shown) = namespace_op(op, &p, path)?;
                match b.write(cmd).await? {
                    Reply::Inode(inode) => (status, inode, shown),
                    _ => return Ok(status.into_response()),
                }
            }
            None => return Err(bad(
                "POST needs ?op= (mkdir, rename, policy, symlink, link, setattr, truncate, append, concat, restore)",
            )),
        };
    Ok((status, super::rest::etag_header(&inode), Json(inode_json(&shown, &inode))).into_response())
}

/// The commands of the operations on names: (status, command, path the answer shows).
fn namespace_op(op: &str, p: &FsParams, path: FsPath) -> Result<(StatusCode, ClientCommand, FsPath), HttpError> {
    let at = Target::Path(path.clone());
    Ok(match op {
        "mkdir" => {
            let cmd = ClientCommand::Mkdir { at, parents: p.parents.unwrap_or(false), attrs: NewAttrs::dir() };
            (StatusCode::CREATED, cmd, path)
        }
        "rename" | "link" => {
            let to = FsPath::parse(p.to.as_deref().ok_or_else(|| bad(format!("{op} needs ?to=/new/path")))?)?;
            let cmd = match op {
                "rename" => ClientCommand::Rename { from: at, to: Target::Path(to.clone()) },
                _ => ClientCommand::Link { from: at, to: Target::Path(to.clone()) },
            };
            let status = if op == "link" { StatusCode::CREATED } else { StatusCode::OK };
            (status, cmd, to)
        }
        "policy" => {
            let versions = match p.policy.as_deref().and_then(|v| v.strip_prefix("versions:")) {
                Some(n) => Some(n.parse::<u32>().map_err(|_| bad("versions:N takes a number"))?),
                None => p.versions,
            };
            if let Some(versions) = versions {
                return Ok((StatusCode::OK, ClientCommand::SetDirVersions { at, versions }, path));
            }
            if p.policy.is_none() && p.chunk_size.is_none() {
                return Err(bad("policy needs ?policy=replicas:N (or versions:N) and/or ?chunk_size=BYTES"));
            }
            let policy = p.policy.as_deref().map(Policy::parse).transpose()?;
            (StatusCode::OK, ClientCommand::SetDirPolicy { at, policy, chunk_size: p.chunk_size }, path)
        }
        "restore" => {
            let version = p.version.ok_or_else(|| bad("restore needs ?version=V"))?;
            (StatusCode::OK, ClientCommand::Restore { at, version }, path)
        }
        "symlink" => {
            let target = p.target.clone().ok_or_else(|| bad("symlink needs ?target=..."))?;
            (StatusCode::CREATED, ClientCommand::Symlink { at, target }, path)
        }
        other => return Err(bad(format!("unknown POST op {other:?}"))),
    })
}

/// `GET ?op=versions`: a file's versions, newest first (also of a deleted file).
pub(super) async fn versions(st: &AppState, path: &FsPath) -> Result<Response, HttpError> {
    match st.backend.query(MetaQuery::Versions(Target::Path(path.clone()))).await? {
        QueryReply::Versions(list) => {
            let shown: Vec<_> = list
                .iter()
                .map(|v| {
                    json!({
                        "version": v.version,
                        "size": v.size,
                        "mtime": humantime::format_rfc3339_nanos(cairn_client::json::time(v.mtime)).to_string(),
                        "mtime_ns": v.mtime,
                        "deleted": v.deleted,
                        "current": v.current,
                    })
                })
                .collect();
            Ok(Json(json!({ "path": path.to_string(), "versions": shown })).into_response())
        }
        _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to versions"))),
    }
}

/// `PUT /v1/fs/{path}?op=xattr&name=N[&flag=create|replace]`: the body is the value.
pub(super) async fn put_xattr(
    b: &impl Backend,
    path: &FsPath,
    p: &FsParams,
    body: Body,
) -> Result<Response, HttpError> {
    let name = p.name.clone().ok_or_else(|| bad("op=xattr needs ?name="))?;
    let mode = match p.flag.as_deref() {
        None => XattrMode::Any,
        Some("create") => XattrMode::Create,
        Some("replace") => XattrMode::Replace,
        Some(f) => return Err(bad(format!("flag {f:?} is not create or replace"))),
    };
    let value = axum::body::to_bytes(body, XATTR_VALUE_MAX).await.map_err(|_| {
        HttpError(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("xattr values are at most {XATTR_VALUE_MAX} bytes"),
        ))
    })?;
    let cmd = ClientCommand::SetXattr { at: Target::Path(path.clone()), name, value: value.to_vec(), mode };
    b.write(cmd).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET ?op=xattr&name=N` (the value as the body) and `GET ?op=xattrs` (JSON names).
pub(super) async fn get_xattr(st: &AppState, path: &FsPath, p: &FsParams) -> Result<Response, HttpError> {
    let at = Target::Path(path.clone());
    if p.op.as_deref() == Some("xattrs") {
        return match st.backend.query(MetaQuery::ListXattrs(at)).await? {
            QueryReply::Names(names) => Ok(Json(json!({ "path": path.to_string(), "xattrs": names })).into_response()),
            _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to xattrs"))),
        };
    }
    let name = p.name.clone().ok_or_else(|| bad("op=xattr needs ?name="))?;
    match st.backend.query(MetaQuery::GetXattr { at, name }).await? {
        QueryReply::Xattr(v) => {
            Ok(([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], v).into_response())
        }
        _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to xattr"))),
    }
}
