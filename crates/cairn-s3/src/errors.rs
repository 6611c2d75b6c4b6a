//! cairn's errors as S3 errors. Callers that know what was missing (a bucket, a key, an
//! upload) map `not_found` themselves; everything else maps here.

use cairn_client::ClientError;
use cairn_core::ErrorCode;
use s3s::{s3_error, S3Error};

/// The S3 error for a cairn error met while serving a request.
pub fn s3(e: ClientError) -> S3Error {
    let msg = e.to_string();
    match e.code() {
        ErrorCode::NotFound => s3_error!(NoSuchKey, "{msg}"),
        ErrorCode::Exists | ErrorCode::Conflict | ErrorCode::PreconditionFailed => {
            s3_error!(PreconditionFailed, "{msg}")
        }
        ErrorCode::NotADirectory | ErrorCode::IsADirectory | ErrorCode::NotEmpty => {
            s3_error!(InvalidArgument, "the key conflicts with the namespace: {msg}")
        }
        ErrorCode::Locked => s3_error!(OperationAborted, "{msg}"),
        ErrorCode::PermissionDenied | ErrorCode::Unauthenticated => s3_error!(AccessDenied, "{msg}"),
        ErrorCode::NoSpace => s3_error!(ServiceUnavailable, "cluster full: {msg}"),
        ErrorCode::Unavailable => s3_error!(ServiceUnavailable, "{msg}"),
        ErrorCode::InvalidArgument => s3_error!(InvalidArgument, "{msg}"),
        ErrorCode::RangeNotSatisfiable => s3_error!(InvalidRange, "{msg}"),
        ErrorCode::TooLarge => s3_error!(EntityTooLarge, "{msg}"),
        _ => s3_error!(InternalError, "{msg}"),
    }
}

/// True if `e` says the thing asked for does not exist.
pub fn is_not_found(e: &ClientError) -> bool {
    e.code() == ErrorCode::NotFound
}

/// An invalid path met while serving a request.
pub fn path(e: cairn_core::Error) -> S3Error {
    s3(ClientError::Api(e.into()))
}
