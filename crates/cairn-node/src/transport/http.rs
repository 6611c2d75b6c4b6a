//! Peer messages over HTTP with mutual TLS: `POST {peer}/v1/peer`, one frame each way.
//!
//! A frame is a 4-byte big-endian length, the codec-encoded message (request: a
//! [`PeerRequest`]; answer: a `Result<PeerReply, ApiError>`), then the bytes the message
//! carries beside it (a chunk's data), if any. Consensus messages go on a connection pool of
//! their own (one HTTP/2 connection per peer) that no chunk ever queues on; everything else on
//! a pool of HTTP/1.1 connections.

use super::{CallError, PeerReply, PeerRequest, Transport};
use crate::unavailable;
use bytes::{BufMut, Bytes, BytesMut};
use cairn_core::codec::{decode, encode};
use cairn_core::{ApiError, ErrorCode};
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// The peer door's one route.
pub const PEER_ROUTE: &str = "/v1/peer";

/// Encodes a message and the bytes it carries as one frame.
pub fn frame<T: Serialize>(head: &T, payload: &[u8]) -> Bytes {
    let head = frame_head(head);
    let mut out = BytesMut::with_capacity(head.len() + payload.len());
    out.put_slice(&head);
    out.put_slice(payload);
    out.freeze()
}

/// A frame's start: the length and the encoded message, to be followed by its payload.
fn frame_head<T: Serialize>(head: &T) -> Bytes {
    let head = encode(head);
    let mut out = BytesMut::with_capacity(4 + head.len());
    out.put_u32(head.len() as u32);
    out.put_slice(&head);
    out.freeze()
}

/// A frame as a stream of its two parts, so a chunk's bytes go out without being copied.
fn frame_stream<T: Serialize>(
    head: &T,
    payload: Bytes,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let parts = [frame_head(head), payload].into_iter().filter(|b| !b.is_empty()).map(Ok);
    futures::stream::iter(parts)
}

/// An HTTP body of one frame (see [`frame`]), its payload not copied.
pub(crate) fn frame_body<T: Serialize>(head: &T, payload: Bytes) -> axum::body::Body {
    axum::body::Body::from_stream(frame_stream(head, payload))
}

/// Splits a frame into its message and the bytes it carries (without copying them).
pub fn unframe<T: DeserializeOwned>(body: Bytes, what: &'static str) -> Result<(T, Bytes), ApiError> {
    let bad = |why: &str| ApiError::new(ErrorCode::InvalidArgument, format!("bad {what} frame: {why}"));
    if body.len() < 4 {
        return Err(bad("shorter than its length"));
    }
    let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    if len > body.len() - 4 {
        return Err(bad("length beyond the end"));
    }
    let head = decode(&body[4..4 + len], what)?;
    Ok((head, body.slice(4 + len..)))
}

/// Moves a message's payload out for framing; refuses bytes where the message has no place.
pub(crate) fn attach(slot: Option<&mut Bytes>, payload: Bytes, what: &str) -> Result<(), ApiError> {
    match slot {
        Some(slot) => *slot = payload,
        None if payload.is_empty() => {}
        None => return Err(ApiError::new(ErrorCode::InvalidArgument, format!("a {what} carries no data"))),
    }
    Ok(())
}

/// Peer messages over HTTPS, with the node's certificate.
pub struct HttpTransport {
    bulk: reqwest::Client,
    consensus: reqwest::Client,
}

impl HttpTransport {
    /// A transport sending bulk messages on `bulk` and consensus messages on `consensus`.
    pub fn new(bulk: reqwest::Client, consensus: reqwest::Client) -> Self {
        HttpTransport { bulk, consensus }
    }

    async fn send(&self, addr: &str, mut req: PeerRequest, timeout: Duration) -> Result<PeerReply, CallError> {
        let client = if req.is_consensus() { &self.consensus } else { &self.bulk };
        let name = req.name();
        let payload = req.payload_mut().map(std::mem::take).unwrap_or_default();
        let body = reqwest::Body::wrap_stream(frame_stream(&req, payload));
        let resp = client
            .post(format!("{addr}{PEER_ROUTE}"))
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| match e.is_connect() {
                true => CallError::NotDelivered(unavailable(format!("{name} to {addr}: {e}"))),
                false => CallError::Failed(unavailable(format!("{name} to {addr}: {e}"))),
            })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| unavailable(format!("{name} to {addr}: {e}")))?;
        if !status.is_success() {
            // The door itself refused (not a member, a malformed frame): a JSON error.
            let err = serde_json::from_slice::<serde_json::Value>(&body).ok();
            let msg = err.as_ref().and_then(|v| v["error"]["message"].as_str()).unwrap_or("no reason given");
            // Only the door's own short reason travels on, never a body as it came.
            let msg: String = msg.chars().take(200).collect();
            let code = match status.as_u16() {
                401 => ErrorCode::Unauthenticated,
                403 => ErrorCode::PermissionDenied,
                400 | 404 | 405 | 413 => ErrorCode::InvalidArgument,
                _ => ErrorCode::Unavailable,
            };
            return Err(CallError::Failed(ApiError::new(code, format!("{name} to {addr}: HTTP {status}: {msg}"))));
        }
        let (answer, payload): (Result<PeerReply, ApiError>, Bytes) = unframe(body, "peer reply")?;
        let mut reply = answer?;
        attach(reply.payload_mut(), payload, "reply")?;
        Ok(reply)
    }
}

impl Transport for HttpTransport {
    fn call(
        &self,
        _to: u64,
        addr: &str,
        req: PeerRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PeerReply, CallError>> {
        let addr = addr.to_string();
        Box::pin(async move { self.send(&addr, req, timeout).await })
    }

    fn check_addr(&self, addr: &str) -> Result<(), ApiError> {
        match reqwest::Url::parse(addr) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() && u.path() == "/" && u.query().is_none() => Ok(()),
            _ => Err(ApiError::new(ErrorCode::InvalidArgument, "a peer address is https://HOST:PORT")),
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::{attach, frame, unframe};
    use crate::transport::{PeerReply, PeerRequest};
    use bytes::Bytes;
    use cairn_core::ApiError;
    use proptest::prelude::*;

    /// What the peer door does with a body: unframe, then attach the payload.
    fn receive(bytes: &[u8]) {
        if let Ok((mut req, payload)) = unframe::<PeerRequest>(Bytes::copy_from_slice(bytes), "peer message") {
            let name = req.name();
            let _ = attach(req.payload_mut(), payload, name);
        }
        let _ = unframe::<Result<PeerReply, ApiError>>(Bytes::copy_from_slice(bytes), "peer reply");
    }

    #[test]
    fn fuzz_seeds_peer_frame() {
        cairn_core::fuzzing::corpus("peer").iter().for_each(|b| receive(b));
        let id = cairn_core::ChunkId::of(b"x");
        let body = frame(&PeerRequest::PutChunk { id, chain: vec![2, 3], data: Bytes::new() }, b"x");
        let (req, payload): (PeerRequest, Bytes) = unframe(body, "t").unwrap();
        assert!(matches!(req, PeerRequest::PutChunk { chain, .. } if chain == vec![2, 3]));
        assert_eq!(&payload[..], b"x");
        assert!(unframe::<PeerRequest>(Bytes::from_static(&[0, 0, 0, 200, 2]), "t").is_err());
    }

    proptest! {
        #[test]
        fn fuzz_peer_frame(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            receive(&bytes);
        }

        #[test]
        fn fuzz_peer_frame_mutated(seed in 0usize..64, flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..8)) {
            // Valid frames of every message with a few bytes changed.
            let id = cairn_core::ChunkId::of(&seed.to_le_bytes());
            let msgs = [
                PeerRequest::Info,
                PeerRequest::ReadIndex,
                PeerRequest::GetChunk { id },
                PeerRequest::CopyChunk { id, from: vec![seed as u64, 7] },
                PeerRequest::PutChunk { id, chain: vec![1; seed % 5], data: Bytes::new() },
                PeerRequest::RemoveNode { id: seed as u64, force: seed % 2 == 0 },
            ];
            let mut body = frame(&msgs[seed % msgs.len()], &[9; 16]).to_vec();
            for (at, b) in flips {
                let n = body.len();
                body[at % n] = b;
            }
            receive(&body);
        }
    }
}
