//! Redundancy policies, set per directory and inherited by what is created below.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most replicas a policy may ask for.
pub const MAX_REPLICAS: u8 = 16;
/// Most data shards an erasure-coded policy may ask for.
pub const MAX_DATA_SHARDS: u8 = 32;
/// Most parity shards an erasure-coded policy may ask for.
pub const MAX_PARITY_SHARDS: u8 = 16;

/// How a file's chunks are kept redundant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Policy {
    /// `replicas:N`: N full copies on N distinct nodes (clipped to the number of nodes).
    Replicas(u8),
    /// `ec:K+M`: each chunk cut into `k` data shards and `m` Reed-Solomon parity shards, on
    /// `k + m` distinct nodes where there are so many; any `k` shards rebuild the chunk.
    Ec {
        /// Data shards.
        k: u8,
        /// Parity shards.
        m: u8,
    },
}

impl Default for Policy {
    fn default() -> Self {
        Policy::Replicas(3)
    }
}

impl Policy {
    /// Parses `replicas:N` (1..=16) or `ec:K+M` (K 1..=32 data, M 1..=16 parity shards).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidPolicy(s.chars().take(64).collect());
        let number = |t: &str| -> Result<u8, Error> {
            // Digits only: `u8::from_str` would also take a leading `+`.
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        if let Some(n) = s.strip_prefix("replicas:") {
            let n = number(n)?;
            if n == 0 || n > MAX_REPLICAS {
                return Err(bad());
            }
            return Ok(Policy::Replicas(n));
        }
        let (k, m) = s.strip_prefix("ec:").and_then(|km| km.split_once('+')).ok_or_else(bad)?;
        let (k, m) = (number(k)?, number(m)?);
        if !(1..=MAX_DATA_SHARDS).contains(&k) || !(1..=MAX_PARITY_SHARDS).contains(&m) {
            return Err(bad());
        }
        Ok(Policy::Ec { k, m })
    }

    /// True if [`Policy::parse`] could have made it (a policy decoded from bytes may not be).
    pub fn is_valid(self) -> bool {
        match self {
            Policy::Replicas(n) => (1..=MAX_REPLICAS).contains(&n),
            Policy::Ec { k, m } => (1..=MAX_DATA_SHARDS).contains(&k) && (1..=MAX_PARITY_SHARDS).contains(&m),
        }
    }

    /// How many parts (copies or shards) this policy keeps of each chunk.
    pub fn copies(self) -> usize {
        match self {
            Policy::Replicas(n) => n as usize,
            Policy::Ec { k, m } => k as usize + m as usize,
        }
    }

    /// How many parts must be readable to read the chunk (1 copy, or `k` shards).
    pub fn needed(self) -> usize {
        match self {
            Policy::Replicas(_) => 1,
            Policy::Ec { k, .. } => k as usize,
        }
    }

    /// How many parts may be lost without losing the chunk.
    pub fn tolerates(self) -> usize {
        self.copies() - self.needed()
    }

    /// The erasure code's shape `(k, m)`, if this policy is one.
    pub fn ec(self) -> Option<(usize, usize)> {
        match self {
            Policy::Ec { k, m } => Some((k as usize, m as usize)),
            Policy::Replicas(_) => None,
        }
    }

    /// The stronger of two policies: the one that survives more lost parts (on a tie,
    /// replicas, which read faster; then more parts). A chunk shared by files of different
    /// policies is kept at the stronger one.
    pub fn stronger(self, other: Policy) -> Policy {
        let rank = |p: Policy| (p.tolerates(), p.ec().is_none(), p.copies());
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    /// How many copies this policy wants on a cluster of `nodes` nodes.
    pub fn effective_replicas(self, nodes: usize) -> usize {
        self.copies().min(nodes.max(1))
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Replicas(n) => write!(f, "replicas:{n}"),
            Policy::Ec { k, m } => write!(f, "ec:{k}+{m}"),
        }
    }
}

/// The directory extended attribute holding an [`ArchiveRule`] (its text form).
pub const ARCHIVE_XATTR: &str = "user.cairn.archive";

/// `archive:ec:K+M after T`, a directory's rule that files below it whose content is older
/// than `after` are converted to the erasure code `policy` (by the leader's archive worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveRule {
    /// The `ec:K+M` policy files are archived to.
    pub policy: Policy,
    /// How long after its last modification a file is archived.
    pub after: std::time::Duration,
}

impl ArchiveRule {
    /// Parses `ec:K+M after T` (with or without a leading `archive:`), T a whole number of
    /// seconds, minutes, hours or days: `30s`, `15m`, `12h`, `7d`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidPolicy(s.chars().take(64).collect());
        let rest = s.strip_prefix("archive:").unwrap_or(s);
        let (code, after) = rest.split_once(" after ").ok_or_else(bad)?;
        let policy = Policy::parse(code.trim()).map_err(|_| bad())?;
        if policy.ec().is_none() {
            return Err(bad());
        }
        let after = after.trim();
        let unit = match after.chars().last().ok_or_else(bad)? {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let digits = &after[..after.len() - 1];
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        Ok(ArchiveRule { policy, after: std::time::Duration::from_secs(n * unit) })
    }
}

impl fmt::Display for ArchiveRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.after.as_secs();
        let (n, unit) = match s {
            _ if s.is_multiple_of(86_400) && s > 0 => (s / 86_400, 'd'),
            _ if s.is_multiple_of(3600) && s > 0 => (s / 3600, 'h'),
            _ if s.is_multiple_of(60) && s > 0 => (s / 60, 'm'),
            _ => (s, 's'),
        };
        write!(f, "archive:{} after {n}{unit}", self.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_rules_parse_and_display() {
        let r = ArchiveRule::parse("archive:ec:10+4 after 7d").unwrap();
        assert_eq!((r.policy, r.after.as_secs()), (Policy::Ec { k: 10, m: 4 }, 7 * 86_400));
        assert_eq!(r.to_string(), "archive:ec:10+4 after 7d");
        assert_eq!(ArchiveRule::parse("ec:2+1 after 90s").unwrap().to_string(), "archive:ec:2+1 after 90s");
        for bad in [
            "ec:4+2",
            "replicas:3 after 1d",
            "ec:4+2 after",
            "ec:4+2 after 7w",
            "ec:4+2 after -1d",
            "ec:4+2 after 9999999999d",
        ] {
            assert!(ArchiveRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_and_displays() {
        let p = Policy::parse("replicas:2").unwrap();
        assert_eq!(p.to_string(), "replicas:2");
        assert_eq!(p.effective_replicas(1), 1);
        for bad in [
            "replicas:0",
            "replicas:17",
            "replicas:x",
            "replicas:+3",
            "ec:4",
            "ec:0+2",
            "ec:4+0",
            "ec:33+1",
            "ec:4+17",
            "ec:+4+2",
            "ec:4+-2",
            "ec:4+2 ",
            "",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        for good in ["ec:4+2", "ec:6+3", "ec:10+4", "ec:1+1", "ec:32+16"] {
            assert_eq!(Policy::parse(good).unwrap().to_string(), good);
        }
        assert!(!Policy::Ec { k: 0, m: 2 }.is_valid() && !Policy::Replicas(0).is_valid());
        assert!(Policy::parse("ec:32+16").unwrap().is_valid());
        let ec = Policy::parse("ec:4+2").unwrap();
        assert_eq!((ec.copies(), ec.needed(), ec.tolerates(), ec.ec()), (6, 4, 2, Some((4, 2))));
    }

    #[test]
    fn the_stronger_policy_survives_more_losses() {
        let (r2, r3, ec42, ec103) =
            (Policy::Replicas(2), Policy::Replicas(3), Policy::Ec { k: 4, m: 2 }, Policy::Ec { k: 10, m: 3 });
        assert_eq!(r2.stronger(ec42), ec42);
        assert_eq!(ec42.stronger(r3), r3, "equal losses: replicas read faster");
        assert_eq!(r3.stronger(ec42), r3);
        assert_eq!(ec42.stronger(ec103), ec103);
    }
}
