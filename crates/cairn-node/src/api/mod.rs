//! The node's HTTP surface, behind two doors. The client door: the public REST API
//! (`/v1/fs`, `/v1/cluster`, `/v1/openapi.json`), operator endpoints (`/v1/fsck`, `/v1/nodes`,
//! `/v1/workers`, `/metrics`) and the client's data path (`/v1/chunks`, `/v1/meta`). The peer
//! door: what only nodes send each other, as messages of the peer transport (`/v1/peer`).

mod admin;
mod auth;
mod batch;
mod conditions;
mod error;
mod internal;
mod keys;
mod locks;
mod rest;
mod rest_ops;
mod status;

use error::query_params;
pub use error::HttpError;

use crate::{LocalBackend, Node};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use cairn_core::{ApiError, ErrorCode, MAX_CHUNK_SIZE};
use std::convert::Infallible;
use std::sync::Arc;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Shared state of every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub node: Arc<Node>,
    pub backend: Arc<LocalBackend>,
    /// Places for client uploads in flight (see [`MAX_UPLOADS`]).
    pub uploads: Arc<tokio::sync::Semaphore>,
}

/// Most client uploads (file PUTs and appends) one node takes at once; more are refused with
/// `unavailable` (503) rather than queued, so a flood cannot pin the node's memory.
const MAX_UPLOADS: usize = 256;

/// Largest lock request body: the most paths of the longest length, with room for JSON.
const LOCK_BODY_LIMIT: usize = cairn_core::lock::MAX_LOCK_PATHS * (cairn_core::path::PATH_MAX + 8) + 4096;

/// Largest batch body (a batch's command must also fit the Raft log's 4 MiB per command).
const BATCH_BODY_LIMIT: usize = 8 << 20;

/// Largest body the internal endpoints accept: one chunk plus framing.
const INTERNAL_BODY_LIMIT: usize = MAX_CHUNK_SIZE as usize + (1 << 20);

/// Builds the node's two routers: the client door's and the peer door's.
///
/// The client door serves the REST API, the operator endpoints and the client's data path
/// (chunk reads and uploads, metadata writes and queries). The peer door serves what only
/// nodes send each other (`transport::PeerRequest`): Raft RPCs, forwarded proposals and
/// joins, read barriers, chunk copies between nodes and chained uploads. A client cannot
/// reach it.
pub fn routers(node: Arc<Node>) -> (Router, Router) {
    let body_timeout = node.config.body_timeout;
    let uploads = Arc::new(tokio::sync::Semaphore::new(MAX_UPLOADS));
    let state = AppState { backend: Arc::new(LocalBackend::new(node.clone())), node, uploads };
    let fs = axum::routing::get(rest::get)
        .head(rest::head)
        .put(rest::put)
        .delete(rest::delete)
        .post(rest_ops::post)
        .layer::<_, Infallible>(DefaultBodyLimit::disable())
        .layer::<_, Infallible>(RequestBodyTimeoutLayer::new(body_timeout));
    let guarded = Router::new()
        .route("/v1/fs", fs.clone())
        .route("/v1/fs/", fs.clone())
        .route("/v1/fs/{*path}", fs)
        .route("/v1/cluster", get(status::cluster))
        .route("/v1/node", get(status::node))
        .route("/v1/changes", get(status::changes))
        .route("/v1/openapi.json", get(status::openapi))
        .route("/v1/fsck", get(admin::fsck))
        .route("/v1/nodes/{id}", post(admin::node_op))
        .route("/v1/workers/{name}", post(admin::worker_op))
        .route("/v1/archive", post(admin::archive))
        .route("/v1/code/run", post(admin::code_run).layer(DefaultBodyLimit::max(crate::code::MAX_PLAN_BYTES)))
        .route("/metrics", get(admin::metrics))
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{name}", axum::routing::delete(keys::delete))
        .route("/v1/locks", post(locks::take).get(locks::list).layer(DefaultBodyLimit::max(LOCK_BODY_LIMIT)))
        .route("/v1/locks/{id}", post(locks::renew).delete(locks::release))
        .route("/v1/batch", post(batch::batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)))
        .merge(
            Router::new()
                .route(
                    "/v1/chunks/{id}",
                    put(internal::put_chunk)
                        .layer::<_, Infallible>(RequestBodyTimeoutLayer::new(body_timeout))
                        .get(internal::get_chunk),
                )
                .route("/v1/meta/write", post(internal::meta_write))
                .route("/v1/meta/query", post(internal::meta_query))
                .route("/v1/cluster/secret", get(internal::cluster_secret))
                .route("/v1/node/chunk-dir", get(internal::chunk_dir))
                .layer(DefaultBodyLimit::max(INTERNAL_BODY_LIMIT)),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard));
    // Outside the guard: the liveness probe, and the routes a joining node uses, which
    // check the cluster secret themselves.
    let client = guarded
        .route("/v1/health", get(health))
        .route("/v1/cluster/join", post(internal::cluster_join).layer(DefaultBodyLimit::max(1 << 16)))
        .route("/v1/cluster/ca", post(internal::cluster_ca).layer(DefaultBodyLimit::max(1 << 16)));
    let peer = Router::new()
        .route("/v1/health", get(health))
        .route(
            crate::transport::http::PEER_ROUTE,
            post(internal::peer_message).layer::<_, Infallible>(RequestBodyTimeoutLayer::new(body_timeout)),
        )
        .layer(DefaultBodyLimit::max(INTERNAL_BODY_LIMIT))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), members_only));
    (finish(client, state.clone()), finish(peer, state))
}

/// The peer door's allow-list: a request passes only from a node whose certificate (from
/// the cluster CA) names a member of this cluster. A node that has no membership yet (being
/// admitted, it hears from the leader before it learns the membership) takes any node of
/// its CA.
async fn members_only(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(crate::serve::PeerNode(id)) = req.extensions().get().copied() else {
        return HttpError(ApiError::new(ErrorCode::Unauthenticated, "the peer door takes node certificates only"))
            .into_response();
    };
    if !st.node.meta.admits_peer(id) {
        let msg = format!("node {id} is not a member of this cluster");
        return HttpError(ApiError::new(ErrorCode::PermissionDenied, msg)).into_response();
    }
    next.run(req).await
}

/// `GET /v1/health`: the liveness probe (the one route that will never need credentials).
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// A router's fallbacks (JSON errors for unknown routes and methods) and state.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(|| async { HttpError(ApiError::new(ErrorCode::NotFound, "no such endpoint")) })
        .method_not_allowed_fallback(|| async {
            HttpError(ApiError::new(ErrorCode::InvalidArgument, "method not allowed on this endpoint"))
        })
        .with_state(state)
}
