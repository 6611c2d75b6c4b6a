//! cairn's node daemon.
pub mod raft;
