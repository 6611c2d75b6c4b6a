//! Redundancy policies, set per directory and inherited by what is created below.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most replicas a policy may ask for.
pub const MAX_REPLICAS: u8 = 16;

/// How a file's chunks are kept redundant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Policy {
    /// `replicas:N`: N full copies on N distinct nodes (clipped to the number of nodes).
    Replicas(u8),
}

impl Default for Policy {
    fn default() -> Self {
        Policy::Replicas(3)
    }
}

impl Policy {
    /// Parses `replicas:N`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidPolicy(s.chars().take(64).collect());
        let n = s.strip_prefix("replicas:").ok_or_else(bad)?;
        let n: u8 = n.parse().map_err(|_| bad())?;
        if n == 0 || n > MAX_REPLICAS {
            return Err(bad());
        }
        Ok(Policy::Replicas(n))
    }

    /// How many copies this policy wants on a large enough cluster.
    pub fn copies(self) -> usize {
        match self {
            Policy::Replicas(n) => n as usize,
        }
    }

    /// The stronger of two policies (the one that keeps more redundancy): a chunk shared by
    /// files of different policies is kept at the stronger one.
    pub fn stronger(self, other: Policy) -> Policy {
        if other.copies() > self.copies() {
            other
        } else {
            self
        }
    }

    /// How many copies this policy wants on a cluster of `nodes` nodes.
    pub fn effective_replicas(self, nodes: usize) -> usize {
        match self {
            Policy::Replicas(n) => (n as usize).min(nodes.max(1)),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Replicas(n) => write!(f, "replicas:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let p = Policy::parse("replicas:2").unwrap();
        assert_eq!(p.to_string(), "replicas:2");
        assert_eq!(p.effective_replicas(1), 1);
        for bad in ["replicas:0", "replicas:17", "replicas:x", "ec:4+2", ""] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }
}
