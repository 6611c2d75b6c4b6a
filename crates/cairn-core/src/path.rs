//! Validated file names and absolute paths.
//!
//! Invariant: an [`FsPath`] is absolute, has no empty, `.` or `..` components, and every
//! component passes [`validate_name`]. The root is the path with no components.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest file name, in bytes, as in POSIX `NAME_MAX`.
pub const NAME_MAX: usize = 255;
/// Longest path, in bytes.
pub const PATH_MAX: usize = 4096;

/// Checks that `name` can be one path component.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let why = if name.is_empty() {
        "empty name"
    } else if name.len() > NAME_MAX {
        "longer than 255 bytes"
    } else if name.contains('/') {
        "contains '/'"
    } else if name.contains('\0') {
        "contains NUL"
    } else if name == "." || name == ".." {
        "'.' and '..' are not names"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName { name: name.chars().take(64).collect(), why })
}

/// An absolute, normalised path inside cairn's namespace.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FsPath {
    parts: Vec<String>,
}

impl FsPath {
    /// The root directory `/`.
    pub fn root() -> Self {
        FsPath { parts: Vec::new() }
    }

    /// Parses an absolute path. Repeated and trailing slashes are accepted and dropped;
    /// `.`/`..` components, NUL bytes and over-long names are refused.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |why| Error::InvalidPath { path: s.chars().take(128).collect(), why };
        if !s.starts_with('/') {
            return Err(bad("must start with '/'"));
        }
        if s.len() > PATH_MAX {
            return Err(bad("longer than 4096 bytes"));
        }
        let mut parts = Vec::new();
        for part in s.split('/').filter(|p| !p.is_empty()) {
            validate_name(part)?;
            parts.push(part.to_string());
        }
        Ok(FsPath { parts })
    }

    /// Parses raw bytes (e.g. a percent-decoded URL path); non-UTF-8 is refused.
    pub fn parse_bytes(b: &[u8]) -> Result<Self, Error> {
        let s = std::str::from_utf8(b).map_err(|_| Error::InvalidPath {
            path: String::from_utf8_lossy(b).chars().take(128).collect(),
            why: "not valid UTF-8",
        })?;
        Self::parse(s)
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The components, root first.
    pub fn components(&self) -> &[String] {
        &self.parts
    }

    /// The last component, or `None` for the root.
    pub fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// The parent directory, or `None` for the root.
    pub fn parent(&self) -> Option<FsPath> {
        if self.parts.is_empty() {
            return None;
        }
        Some(FsPath { parts: self.parts[..self.parts.len() - 1].to_vec() })
    }

    /// Length of the path as text, in bytes (`/` for the root).
    pub fn text_len(&self) -> usize {
        self.parts.iter().map(|p| p.len() + 1).sum::<usize>().max(1)
    }

    /// This path with `name` appended; refused beyond [`PATH_MAX`], like [`FsPath::parse`].
    pub fn join(&self, name: &str) -> Result<FsPath, Error> {
        validate_name(name)?;
        if self.text_len() + 1 + name.len() > PATH_MAX {
            let path = format!("{self}/{name}").chars().take(128).collect();
            return Err(Error::InvalidPath { path, why: "longer than 4096 bytes" });
        }
        let mut parts = self.parts.clone();
        parts.push(name.to_string());
        Ok(FsPath { parts })
    }

    /// True if `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &FsPath) -> bool {
        self.parts.len() >= other.parts.len() && self.parts[..other.parts.len()] == other.parts[..]
    }
}

impl fmt::Display for FsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("/");
        }
        for p in &self.parts {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl TryFrom<String> for FsPath {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        FsPath::parse(&s)
    }
}

impl From<FsPath> for String {
    fn from(p: FsPath) -> String {
        p.to_string()
    }
}

impl std::str::FromStr for FsPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        FsPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_bad_names() {
        for bad in ["", ".", "..", "a/b", "a\0b", &"x".repeat(256)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_name(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in ["", "a/b", "/a/../b", "/./a", "/a\0"] {
            assert!(FsPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(FsPath::parse_bytes(b"/a/\xff").is_err());
    }

    #[test]
    fn join_keeps_paths_within_path_max() {
        let name = "n".repeat(NAME_MAX);
        let mut p = FsPath::root();
        while let Ok(longer) = p.join(&name) {
            p = longer;
        }
        assert!(p.text_len() <= PATH_MAX && p.text_len() + 1 + NAME_MAX > PATH_MAX);
        assert_eq!(p.text_len(), p.to_string().len());
        assert_eq!(FsPath::parse(&p.to_string()).unwrap(), p, "every joined path parses back");
        assert_eq!(FsPath::root().text_len(), 1);
    }

    #[test]
    fn normalises_slashes() {
        assert_eq!(FsPath::parse("//a///b/").unwrap().to_string(), "/a/b");
        assert!(FsPath::parse("/").unwrap().is_root());
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(parts in prop::collection::vec("[a-zA-Z0-9 ._-]{1,20}", 0..6)) {
            prop_assume!(parts.iter().all(|p| p != "." && p != ".."));
            let s = format!("/{}", parts.join("/"));
            let p = FsPath::parse(&s).unwrap();
            prop_assert_eq!(FsPath::parse(&p.to_string()).unwrap(), p.clone());
            prop_assert_eq!(p.components().len(), parts.len());
            if let Some(parent) = p.parent() {
                prop_assert!(p.starts_with(&parent));
                prop_assert_eq!(parent.join(p.name().unwrap()).unwrap(), p);
            }
        }
    }
}
