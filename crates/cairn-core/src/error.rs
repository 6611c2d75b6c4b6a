//! The one error vocabulary of cairn: stable codes that every interface maps once.
//!
//! [`ErrorCode`] is what an operator greps for and what crosses the wire inside an
//! [`ApiError`]. Each library crate has its own error enum and maps it onto a code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable, documented error code. The string forms never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The path or object does not exist.
    NotFound,
    /// The target already exists.
    Exists,
    /// A path component that must be a directory is not one.
    NotADirectory,
    /// The operation needs a file but found a directory.
    IsADirectory,
    /// The directory is not empty.
    NotEmpty,
    /// The object is locked by someone else.
    Locked,
    /// The caller may not do this.
    PermissionDenied,
    /// A disk is full.
    NoSpace,
    /// The cluster cannot serve the request now (no quorum, node down); retrying may help.
    Unavailable,
    /// The request is malformed or names something impossible.
    InvalidArgument,
    /// The object changed under the caller (optimistic concurrency failed).
    Conflict,
    /// The requested byte range cannot be satisfied.
    RangeNotSatisfiable,
    /// Stored data failed verification.
    Corrupt,
    /// A bug or unexpected condition inside cairn.
    Internal,
    /// A request (or the upload it announces) is larger than cairn takes at all.
    TooLarge,
    /// The caller did not say who it is (no credentials, or a peer without a certificate).
    Unauthenticated,
    /// A condition the request set (`If-Match`, `If-None-Match`, `If-Unmodified-Since`) does
    /// not hold.
    PreconditionFailed,
}

impl ErrorCode {
    /// The stable string form, as used in JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::Exists => "exists",
            ErrorCode::NotADirectory => "not_a_directory",
            ErrorCode::IsADirectory => "is_a_directory",
            ErrorCode::NotEmpty => "not_empty",
            ErrorCode::Locked => "locked",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NoSpace => "no_space",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::Internal => "internal",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PreconditionFailed => "precondition_failed",
        }
    }

    /// The HTTP status this code maps to at the REST edge.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::Exists | ErrorCode::NotEmpty | ErrorCode::Conflict => 409,
            ErrorCode::NotADirectory | ErrorCode::IsADirectory | ErrorCode::InvalidArgument => 400,
            ErrorCode::Locked => 423,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NoSpace => 507,
            ErrorCode::Unavailable => 503,
            ErrorCode::RangeNotSatisfiable => 416,
            ErrorCode::Corrupt | ErrorCode::Internal => 500,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PreconditionFailed => 412,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as it crosses the wire: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for humans.
    pub message: String,
}

impl ApiError {
    /// Builds an error from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }
}

/// Errors of the pure core: input that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file name is not acceptable.
    #[error("invalid name {name:?}: {why}")]
    InvalidName {
        /// The offending name (lossy).
        name: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// A path is not acceptable.
    #[error("invalid path {path:?}: {why}")]
    InvalidPath {
        /// The offending path (lossy).
        path: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// A policy string does not parse.
    #[error("invalid policy {0:?}: expected replicas:N with 1 <= N <= 16")]
    InvalidPolicy(String),
    /// A chunk id is not 64 hex digits.
    #[error("invalid chunk id {0:?}")]
    InvalidChunkId(String),
    /// Bytes could not be decoded as the expected message.
    #[error("cannot decode {what}: {why}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        why: String,
    },
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}
