//! The one mapping from cairn errors to HTTP responses: status from the code, JSON body
//! `{"error":{"code":"...","message":"..."}}`.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_core::ApiError;

/// An error as an HTTP response.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl From<cairn_client::ClientError> for HttpError {
    fn from(e: cairn_client::ClientError) -> Self {
        HttpError(e.into())
    }
}

impl From<cairn_core::Error> for HttpError {
    fn from(e: cairn_core::Error) -> Self {
        HttpError(e.into())
    }
}

/// A query string as parsed by axum, or the `invalid_argument` error every endpoint answers
/// for a bad one.
pub(crate) fn query_params<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, HttpError> {
    q.map(|Query(p)| p).map_err(|e| {
        HttpError(ApiError::new(cairn_core::ErrorCode::InvalidArgument, format!("bad query string: {}", e.body_text())))
    })
}
