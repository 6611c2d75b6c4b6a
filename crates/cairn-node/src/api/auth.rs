//! The client door's guard: every route but the liveness probe and the secret-guarded join
//! routes needs an access key, and the key must allow what the route does (401
//! `unauthenticated` without valid credentials, 403 `permission_denied` beyond the key's
//! rights).

use super::{AppState, HttpError};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_core::access::Access;
use cairn_core::{ApiError, ErrorCode, FsPath};

/// What a request to the client door needs: the right, and the paths it touches (`None`
/// for routes that name no path).
fn needs(method: &Method, uri: &axum::http::Uri) -> Result<(Access, Option<Vec<FsPath>>), HttpError> {
    let path = uri.path();
    if path == "/v1/fs" || path.starts_with("/v1/fs/") {
        let mut paths = vec![super::rest::fs_path(uri)?];
        let write = !matches!(*method, Method::GET | Method::HEAD);
        for (k, v) in url_params(uri.query().unwrap_or("")) {
            match k.as_str() {
                "to" => paths.push(v.parse().map_err(|e: cairn_core::Error| HttpError(e.into()))?),
                "sources" => {
                    for s in v.split(',').filter(|s| !s.is_empty()) {
                        paths.push(s.parse().map_err(|e: cairn_core::Error| HttpError(e.into()))?);
                    }
                }
                _ => {}
            }
        }
        return Ok((if write { Access::Write } else { Access::Read }, Some(paths)));
    }
    if path == "/v1/locks" && *method == Method::GET {
        // Listing one path's locks needs read there; listing all of them, a key for everything.
        let on = url_params(uri.query().unwrap_or("")).into_iter().find(|(k, _)| k == "path");
        let paths = on
            .map(|(_, v)| v.parse().map(|p| vec![p]))
            .transpose()
            .map_err(|e: cairn_core::Error| HttpError(e.into()))?;
        return Ok((Access::Read, paths));
    }
    if path == "/v1/locks" || path.starts_with("/v1/locks/") || path == "/v1/batch" {
        // The paths are in the body: the handler checks them against the key's prefixes.
        return Ok((Access::Write, Some(Vec::new())));
    }
    let access = match path {
        "/v1/cluster" | "/v1/node" | "/v1/openapi.json" => Access::Any,
        "/v1/meta/query" | "/v1/changes" | "/v1/node/chunk-dir" => Access::Read,
        "/v1/meta/write" => Access::Write,
        p if p.starts_with("/v1/chunks/") => match *method {
            Method::GET | Method::HEAD => Access::Read,
            _ => Access::Write,
        },
        _ => Access::Admin,
    };
    Ok((access, None))
}

/// A query string's pairs, percent-decoded.
fn url_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8().ok().map(|c| c.into_owned())
            };
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The client door's middleware: authenticate, then authorise.
pub(crate) async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    // The request's head is checked where it lies (the body, not `Sync`, is set aside while
    // the key is looked up): no copy of the headers per request.
    let (mut parts, mut body) = req.into_parts();
    // A SigV4 request that declares no payload hash is signed over its body's hash: small
    // bodies are read here to compute it.
    let mut body_hash = None;
    if crate::sigv4::needs_body_hash(&parts.headers) {
        let read =
            tokio::time::timeout(st.node.config.body_timeout, axum::body::to_bytes(body, crate::sigv4::BODY_HASH_MAX));
        match read.await {
            Ok(Ok(bytes)) => {
                body_hash = Some(cairn_client::tls::sha256_hex(&bytes));
                body = axum::body::Body::from(bytes);
            }
            _ => {
                let msg = "a SigV4 request over 1 MiB (or whose body stalls) must declare x-amz-content-sha256";
                return HttpError(ApiError::new(ErrorCode::Unauthenticated, msg)).into_response();
            }
        }
    }
    let checked = async {
        let (access, paths) = needs(&parts.method, &parts.uri)?;
        let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let key = st.node.authenticate(parts.method.as_str(), uri, &parts.headers, body_hash.as_deref()).await?;
        if !key.allows(access, paths.as_deref()) {
            let msg = format!("access key {:?} may not do this here", key.name);
            return Err(HttpError(ApiError::new(ErrorCode::PermissionDenied, msg)));
        }
        Ok::<_, HttpError>(key)
    };
    match checked.await {
        Ok(key) => {
            // Handlers that act for the key (locks record their owner) find it here.
            parts.extensions.insert(key);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => {
            let mut resp = e.into_response();
            if resp.status() == axum::http::StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"cairn\""));
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_what_they_do() {
        let need = |m: Method, u: &str| {
            let (a, p) = needs(&m, &u.parse().unwrap()).unwrap();
            (a, p.map(|p| p.iter().map(|p| p.to_string()).collect::<Vec<_>>()))
        };
        assert_eq!(need(Method::GET, "/v1/fs/a/b"), (Access::Read, Some(vec!["/a/b".into()])));
        assert_eq!(
            need(Method::POST, "/v1/fs/a?op=rename&to=%2Fz%2Fy"),
            (Access::Write, Some(vec!["/a".into(), "/z/y".into()]))
        );
        assert_eq!(
            need(Method::POST, "/v1/fs/c?op=concat&sources=/a,/b"),
            (Access::Write, Some(vec!["/c".into(), "/a".into(), "/b".into()]))
        );
        assert_eq!(need(Method::GET, "/v1/cluster"), (Access::Any, None));
        assert_eq!(need(Method::PUT, "/v1/chunks/ab"), (Access::Write, None));
        assert_eq!(need(Method::POST, "/v1/workers/repair"), (Access::Admin, None));
        assert_eq!(need(Method::POST, "/v1/code/run"), (Access::Admin, None));
        assert_eq!(need(Method::POST, "/v1/archive"), (Access::Admin, None));
        assert_eq!(need(Method::GET, "/metrics"), (Access::Admin, None));
        assert_eq!(need(Method::GET, "/v1/keys"), (Access::Admin, None));
        assert_eq!(need(Method::POST, "/v1/locks"), (Access::Write, Some(vec![])));
        assert_eq!(need(Method::DELETE, "/v1/locks/00000000000000ff"), (Access::Write, Some(vec![])));
        assert_eq!(need(Method::GET, "/v1/locks?path=%2Fa"), (Access::Read, Some(vec!["/a".into()])));
        assert_eq!(need(Method::GET, "/v1/locks"), (Access::Read, None));
    }
}
