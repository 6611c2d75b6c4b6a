//! The S3 door: `cairn-s3`'s service over this node's own [`LocalBackend`] (the data path the
//! REST API runs too) and its key table, behind the same server loop and limits as the client
//! door, with uploads cut off when their body stalls.

use crate::local::LocalBackend;
use crate::Node;
use async_trait::async_trait;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use cairn_core::access::AccessKey;
use cairn_core::{ApiError, ErrorCode};
use s3s::service::S3Service;
use std::sync::Arc;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The node's keys, for S3 signatures.
struct NodeKeys(Arc<Node>);

#[async_trait]
impl cairn_s3::KeyStore for NodeKeys {
    async fn key(&self, id: &str) -> Result<(AccessKey, String), ApiError> {
        let (key, secret) = self.0.key_and_secret(id).await?;
        let secret =
            String::from_utf8(secret).map_err(|_| ApiError::new(ErrorCode::Unauthenticated, "unknown access key"))?;
        Ok((key, secret))
    }
}

/// The S3 door's router: every request goes to the S3 service.
pub(crate) fn router(node: Arc<Node>) -> Router {
    let body_timeout = node.config.body_timeout;
    let service = cairn_s3::service(Arc::new(LocalBackend::new(node.clone())), Arc::new(NodeKeys(node)));
    Router::new()
        .fallback(move |req: Request| call(service.clone(), req))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
}

async fn call(service: S3Service, req: Request) -> Response {
    // A request that declares no body has none (the timeout's wrapper hides the length that
    // s3s checks against the signature).
    let has_body = {
        let h = req.headers();
        h.contains_key(axum::http::header::CONTENT_LENGTH) || h.contains_key(axum::http::header::TRANSFER_ENCODING)
    };
    let req = req.map(|b| if has_body { s3s::Body::http_body_unsync(b) } else { s3s::Body::empty() });
    match service.call(req).await {
        Ok(resp) => resp.map(axum::body::Body::new).into_response(),
        Err(e) => {
            tracing::warn!("S3 request failed: {e:?}");
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
