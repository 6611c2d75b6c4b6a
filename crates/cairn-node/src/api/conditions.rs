//! What a REST write presents besides its body, read from its headers: the locks it holds
//! (`X-Cairn-Lock: ID[,ID]`), its fencing token (`X-Cairn-Fence: N`) and its conditions
//! (`If-Match`, `If-None-Match`, `If-Unmodified-Since`), all checked by the metadata in
//! the same step as the write.

use super::rest::bad;
use super::{AppState, HttpError};
use crate::LocalBackend;
use axum::http::{header, HeaderMap};
use cairn_client::Guarded;
use cairn_core::lock::{parse_lock_id, Guard, Precondition, MAX_ETAGS, MAX_PRESENTED};
use std::sync::Arc;

/// Header naming the locks a write presents (16-hex-digit ids, comma-separated).
pub const LOCK_HEADER: &str = "x-cairn-lock";
/// Header carrying a write's fencing token.
pub const FENCE_HEADER: &str = "x-cairn-fence";

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, HttpError> {
    headers.get(name).map(|v| v.to_str().map_err(|_| bad(format!("{name} is not ASCII")))).transpose()
}

/// An ETag list (`"a", W/"b"`), or `None` for `*`.
fn etags(v: &str, name: &str) -> Result<Option<Vec<String>>, HttpError> {
    if v.trim() == "*" {
        return Ok(None);
    }
    let tags: Vec<String> = v.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    if tags.is_empty() || tags.len() > MAX_ETAGS {
        return Err(bad(format!("{name} takes * or 1 to {MAX_ETAGS} ETags")));
    }
    Ok(Some(tags))
}

/// The guard a request's headers ask for.
pub(super) fn guard(headers: &HeaderMap) -> Result<Guard, HttpError> {
    let mut g = Guard::default();
    if let Some(v) = text(headers, LOCK_HEADER)? {
        for id in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            g.locks.push(parse_lock_id(id)?);
        }
        if g.locks.len() > MAX_PRESENTED {
            return Err(bad(format!("at most {MAX_PRESENTED} locks in {LOCK_HEADER}")));
        }
    }
    if let Some(v) = text(headers, FENCE_HEADER)? {
        g.fence = Some(v.trim().parse().map_err(|_| bad(format!("{FENCE_HEADER} is a fencing token (a number)")))?);
    }
    if let Some(v) = text(headers, header::IF_MATCH.as_str())? {
        g.preconditions.push(match etags(v, "If-Match")? {
            None => Precondition::Exists,
            Some(tags) => Precondition::EtagIn(tags),
        });
    }
    if let Some(v) = text(headers, header::IF_NONE_MATCH.as_str())? {
        g.preconditions.push(match etags(v, "If-None-Match")? {
            None => Precondition::Absent,
            Some(tags) => Precondition::EtagNotIn(tags),
        });
    }
    if let Some(v) = text(headers, header::IF_UNMODIFIED_SINCE.as_str())? {
        let when = httpdate::parse_http_date(v.trim()).map_err(|_| bad("If-Unmodified-Since is not an HTTP date"))?;
        let secs = when.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        g.preconditions.push(Precondition::UnmodifiedSince(secs.min(i64::MAX as u64) as i64));
    }
    Ok(g)
}

/// The node's backend, presenting what the request's headers ask for with every write.
pub(super) fn backend(st: &AppState, headers: &HeaderMap) -> Result<Arc<Guarded<LocalBackend>>, HttpError> {
    Ok(Arc::new(Guarded::new(st.backend.clone(), guard(headers)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn headers_become_a_guard() {
        let mut h = HeaderMap::new();
        assert!(guard(&h).unwrap().is_empty());
        h.insert(LOCK_HEADER, HeaderValue::from_static("00000000000000ff, 0000000000000001"));
        h.insert(FENCE_HEADER, HeaderValue::from_static("7"));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"1-2\", W/\"1-3\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        h.insert(header::IF_UNMODIFIED_SINCE, HeaderValue::from_static("Thu, 01 Jan 1970 00:01:40 GMT"));
        let g = guard(&h).unwrap();
        assert_eq!(g.locks, vec![255, 1]);
        assert_eq!(g.fence, Some(7));
        assert_eq!(
            g.preconditions,
            vec![
                Precondition::EtagIn(vec!["\"1-2\"".into(), "W/\"1-3\"".into()]),
                Precondition::Absent,
                Precondition::UnmodifiedSince(100)
            ]
        );
        for (name, value) in
            [(LOCK_HEADER, "xyz"), (FENCE_HEADER, "-1"), ("if-match", ","), ("if-unmodified-since", "soon")]
        {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            assert!(guard(&h).is_err(), "{name}: {value}");
        }
    }
}
