//! Access keys: who may use the client door, and what each key may do.
//!
//! A key has a public id (`CK` and 18 characters) and a secret that only its holder and the
//! cluster know; the metadata keeps the secret sealed (encrypted with a key derived from the
//! cluster CA's key, which never enters the metadata). Rights: `read`, `write`, `admin`
//! (everything, the operator API included), optionally limited to path prefixes.

use crate::{ApiError, ErrorCode, FsPath};
use serde::{Deserialize, Serialize};

/// Most path prefixes one key may be limited to.
pub const MAX_PREFIXES: usize = 64;

/// An access key as the metadata keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// Its name, unique in the cluster (1 to 64 of `A-Z a-z 0-9 . _ -`).
    pub name: String,
    /// Its public id.
    pub id: String,
    /// Its secret, sealed with the cluster key (nonce then ciphertext and tag).
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    /// It may read files and list directories.
    pub read: bool,
    /// It may create, change and remove files and directories.
    pub write: bool,
    /// It may do anything, the operator API (nodes, workers, fsck, metrics, keys) included.
    pub admin: bool,
    /// The paths it is limited to (none: the whole namespace).
    pub prefixes: Vec<FsPath>,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any valid key (cluster status, the API description).
    Any,
    /// Reading.
    Read,
    /// Writing.
    Write,
    /// The operator API.
    Admin,
}

impl AccessKey {
    /// Checks the key's name and prefixes.
    pub fn validate(&self) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError::new(ErrorCode::InvalidArgument, m));
        let name_ok = (1..=64).contains(&self.name.len())
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name_ok {
            return bad(format!("key name {:?} must be 1 to 64 of A-Z a-z 0-9 . _ -", self.name));
        }
        if !is_key_id(&self.id) {
            return bad("malformed key id".into());
        }
        if self.prefixes.len() > MAX_PREFIXES {
            return bad(format!("a key takes at most {MAX_PREFIXES} prefixes"));
        }
        if self.sealed.len() > 256 {
            return bad("sealed secret too long".into());
        }
        Ok(())
    }

    /// True if this key may do `access` (on `paths`, each of which must lie under one of its
    /// prefixes when it has any). Path-less data routes (raw chunks, metadata commands that
    /// may name inodes) pass `None`: a key limited to prefixes cannot use them.
    pub fn allows(&self, access: Access, paths: Option<&[FsPath]>) -> bool {
        if self.admin {
            return true;
        }
        let right = match access {
            Access::Any => true,
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Admin => false,
        };
        if !right || self.prefixes.is_empty() || access == Access::Any {
            return right;
        }
        match paths {
            Some(paths) => paths.iter().all(|p| self.prefixes.iter().any(|prefix| p.starts_with(prefix))),
            None => false,
        }
    }
}

/// True if `id` looks like a key id: `CK` and 18 upper-case letters or digits.
pub fn is_key_id(id: &str) -> bool {
    id.len() == 20 && id.starts_with("CK") && id[2..].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(read: bool, write: bool, admin: bool, prefixes: &[&str]) -> AccessKey {
        AccessKey {
            name: "k".into(),
            id: "CKABCDEFGHIJKLMNOPQR".into(),
            sealed: vec![],
            read,
            write,
            admin,
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn rights_and_prefixes() {
        let p = |s: &str| -> FsPath { s.parse().unwrap() };
        let reader = key(true, false, false, &[]);
        assert!(reader.allows(Access::Read, Some(&[p("/a")])));
        assert!(reader.allows(Access::Read, None));
        assert!(!reader.allows(Access::Write, Some(&[p("/a")])));
        assert!(!reader.allows(Access::Admin, None));
        let scoped = key(true, true, false, &["/home/ann"]);
        assert!(scoped.allows(Access::Write, Some(&[p("/home/ann/x")])));
        assert!(scoped.allows(Access::Write, Some(&[p("/home/ann")])));
        assert!(!scoped.allows(Access::Write, Some(&[p("/home/annex")])));
        assert!(!scoped.allows(Access::Write, Some(&[p("/home/ann/x"), p("/etc")])));
        assert!(!scoped.allows(Access::Read, None), "no path-less routes for a scoped key");
        assert!(scoped.allows(Access::Any, None));
        assert!(key(false, false, true, &["/x"]).allows(Access::Admin, None));
        assert!(key(true, false, false, &[]).validate().is_ok());
        assert!(AccessKey { name: "bad name".into(), ..key(true, false, false, &[]) }.validate().is_err());
        assert!(is_key_id("CKABCDEFGHIJKLMNOPQR") && !is_key_id("CKabc") && !is_key_id("XXABCDEFGHIJKLMNOPQR"));
    }
}
