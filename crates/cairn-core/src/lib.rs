//! cairn's pure core: the vocabulary every other crate speaks.
//!
//! Nothing here touches the file system, the network or a runtime: ids ([`ChunkId`]),
//! validated names and paths ([`FsPath`]), redundancy policies ([`Policy`]), the metadata
//! commands and replies that travel through Raft and over the wire ([`wire`]), the stable
//! error codes ([`ErrorCode`]) and the versioned binary codec ([`codec`]).

#![warn(missing_docs)]

pub mod access;
pub mod chunk;
pub mod codec;
pub mod error;
pub mod extent;
pub mod fuzzing;
pub mod lock;
pub mod path;
pub mod placement;
pub mod policy;
pub mod wire;

pub use chunk::ChunkId;
pub use error::{ApiError, Error, ErrorCode};
pub use extent::Extent;
pub use path::{validate_name, FsPath};
pub use policy::Policy;

/// Default chunk size: 4 MiB, as in LiteDFS.
pub const DEFAULT_CHUNK_SIZE: u32 = 4 << 20;
/// Smallest chunk size a file or directory may ask for.
pub const MIN_CHUNK_SIZE: u32 = 64 << 10;
/// Largest chunk size a file or directory may ask for.
pub const MAX_CHUNK_SIZE: u32 = 64 << 20;
/// Files up to this size are stored inline in their inode instead of in chunks.
pub const INLINE_MAX: u64 = 16 << 10;
/// Most extents one file may have (a file written in whole chunks of the default size can
/// reach 256 GiB; in-place writes and concatenation add extents).
pub const MAX_EXTENTS: usize = 1 << 16;
