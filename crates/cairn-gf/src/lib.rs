//! cairn's coding engine: arithmetic in GF(2^8) over whole buffers, and the Reed-Solomon
//! code built on it.
//!
//! The field is GF(2)[x] / x^8 + x^4 + x^3 + x^2 + 1 (the polynomial 0x11D of ISA-L, Ceph
//! and HDFS), so parity computed here is parity any of them computes from the same matrix.
//! Buffer operations run on the fastest kernel the CPU offers, chosen at run time
//! ([`Backend::best`]): AVX-512 with GFNI, AVX2, SSSE3, or portable table lookups. Every
//! kernel gives the same bytes; the tests hold each one to a bit-by-bit oracle.
//!
//! On the kernels sit the Reed-Solomon code ([`ReedSolomon`]) and coding plans ([`Plan`]):
//! programs of LOAD, IADD, MULT, MULADD, WRITE, SEND and OUTPUT steps that nodes run over
//! streamed buffers, checked before they run and executed by [`run`].

pub mod bench;
mod field;
#[cfg(feature = "isal")]
pub mod isal;
mod kernel;
mod matrix;
mod portable;
mod program;
mod rapidraid;
mod rs;
mod run;
mod stripe;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use field::{div, exp, inv, mul, POLY};
pub use kernel::Backend;
pub use matrix::Matrix;
pub use program::{
    Checked, Plan, Program, Source, Step, MAX_BUFFER, MAX_BUFFERS, MAX_LENGTH, MAX_NAME, MAX_PROGRAMS, MAX_STEPS,
    PLAN_VERSION,
};
pub use rapidraid::RapidRaid;
pub use rs::ReedSolomon;
pub use run::{run, Emit, Io, Machine, Outcome, Written};
pub use stripe::{Piece, Stripe};

/// What can go wrong in the coding engine. Every case is a refusal made before any byte of
/// output is written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Buffers of one operation differ in length.
    #[error("buffer lengths differ: {expected} bytes expected, {found} found")]
    Length {
        /// The length the operation works on.
        expected: usize,
        /// The length of the offending buffer.
        found: usize,
    },
    /// The number of buffers does not match the shape of the coefficient matrix.
    #[error("shape mismatch: {what}")]
    Shape {
        /// Which count was wrong.
        what: &'static str,
    },
    /// A square matrix has no inverse.
    #[error("the matrix is singular")]
    Singular,
    /// An erasure code with these parameters cannot be built.
    #[error("no code with {data} data and {parity} parity shards (need 1 <= data, 1 <= parity, data + parity <= 256)")]
    Code {
        /// Data shards asked for.
        data: usize,
        /// Parity shards asked for.
        parity: usize,
    },
    /// A coding plan was refused (the reason says which rule it broke), or a source failed
    /// while it ran.
    #[error("bad coding plan: {0}")]
    Program(String),
    /// Reading or storing a stream failed while a plan ran.
    #[error("coding plan I/O: {0}")]
    Io(String),
    /// Fewer shards survive than a decode needs.
    #[error("{present} shards present, {needed} needed to decode")]
    TooFewShards {
        /// Shards at hand.
        present: usize,
        /// Shards the code needs.
        needed: usize,
    },
}

/// The result of coding operations.
pub type Result<T> = std::result::Result<T, Error>;
