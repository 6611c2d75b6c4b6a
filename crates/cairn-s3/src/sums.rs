//! Checksums of uploads: the MD5 behind every ETag, `Content-MD5`, and the `x-amz-checksum-*`
//! algorithms (CRC32, CRC32C, CRC64NVME, SHA1, SHA256), claimed in a header or in the trailer
//! of an `aws-chunked` body. What a client claims is checked against what arrived before the
//! object is committed (`BadDigest` otherwise); what was computed is kept with the object
//! and returned.

use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::dto::Checksum;
use s3s::{s3_error, S3Result};
use std::collections::BTreeMap;

/// The algorithms' names, as headers and stored records spell them.
pub const ALGORITHMS: [&str; 5] = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"];

/// Running checksums over an upload.
pub struct Sums {
    md5: Md5,
    others: ChecksumHasher,
}

/// The algorithms wanted: those a client names (`x-amz-sdk-checksum-algorithm`,
/// `x-amz-trailer`) or claims a value of.
pub fn wanted(named: &[String], claimed: &Checksum) -> Sums {
    let has = |alg: &str| named.iter().any(|n| n.eq_ignore_ascii_case(alg)) || value(claimed, alg).is_some();
    let others = ChecksumHasher {
        crc32: has("crc32").then(Crc32::new),
        crc32c: has("crc32c").then(Crc32c::new),
        crc64nvme: has("crc64nvme").then(Crc64Nvme::new),
        sha1: has("sha1").then(Sha1::new),
        sha256: has("sha256").then(Sha256::new),
    };
    Sums { md5: Md5::new(), others }
}

/// The value of algorithm `alg` in `c`.
pub fn value<'c>(c: &'c Checksum, alg: &str) -> Option<&'c String> {
    match alg {
        "crc32" => c.checksum_crc32.as_ref(),
        "crc32c" => c.checksum_crc32c.as_ref(),
        "crc64nvme" => c.checksum_crc64nvme.as_ref(),
        "sha1" => c.checksum_sha1.as_ref(),
        "sha256" => c.checksum_sha256.as_ref(),
        _ => None,
    }
}

fn set(c: &mut Checksum, alg: &str, v: String) {
    match alg {
        "crc32" => c.checksum_crc32 = Some(v),
        "crc32c" => c.checksum_crc32c = Some(v),
        "crc64nvme" => c.checksum_crc64nvme = Some(v),
        "sha1" => c.checksum_sha1 = Some(v),
        "sha256" => c.checksum_sha256 = Some(v),
        _ => {}
    }
}

/// `c` as a stored record's map.
pub fn to_map(c: &Checksum) -> BTreeMap<String, String> {
    ALGORITHMS.iter().filter_map(|a| value(c, a).map(|v| (a.to_string(), v.clone()))).collect()
}

/// A stored record's map as a checksum.
pub fn from_map(m: &BTreeMap<String, String>) -> Checksum {
    let mut c = Checksum::default();
    for (k, v) in m {
        set(&mut c, k, v.clone());
    }
    c
}

/// The checksums claimed in a trailer (`x-amz-checksum-ALG: VALUE`).
pub fn from_headers(h: &http::HeaderMap) -> Checksum {
    let mut c = Checksum::default();
    for alg in ALGORITHMS {
        if let Some(v) = h.get(format!("x-amz-checksum-{alg}")).and_then(|v| v.to_str().ok()) {
            set(&mut c, alg, v.to_string());
        }
    }
    c
}

impl Sums {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.others.update(data);
    }

    /// The MD5 (hex, the ETag) and the other checksums.
    pub fn finish(self) -> (String, [u8; 16], Checksum) {
        let md5 = self.md5.finalize();
        let raw: [u8; 16] = md5.as_ref().try_into().unwrap_or([0; 16]);
        (hex::encode(raw), raw, self.others.finalize())
    }
}

/// Checks what arrived against what the client claimed: `Content-MD5` (base64) and each
/// claimed checksum.
pub fn verify(md5: &[u8; 16], computed: &Checksum, content_md5: Option<&str>, claimed: &Checksum) -> S3Result<()> {
    use base64::Engine;
    if let Some(b64) = content_md5 {
        let claimed = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64"))?;
        if claimed != md5 {
            return Err(s3_error!(BadDigest, "the Content-MD5 you specified did not match what was received"));
        }
    }
    for alg in ALGORITHMS {
        if let Some(want) = value(claimed, alg) {
            if value(computed, alg) != Some(want) {
                return Err(s3_error!(BadDigest, "the {alg} checksum you specified did not match what was received"));
            }
        }
    }
    Ok(())
}

/// True if a multipart object's checksum can be of kind `full_object` with `alg` (S3's rules:
/// whole-object checksums are CRCs; CRC64NVME is whole-object only).
pub fn combinable(alg: &str, full_object: bool) -> bool {
    match full_object {
        true => matches!(alg, "crc32" | "crc32c" | "crc64nvme"),
        false => matches!(alg, "crc32" | "crc32c" | "sha1" | "sha256"),
    }
}

/// The checksum of a multipart object from its parts' (raw bytes and length, in order):
/// `COMPOSITE` is the algorithm over the parts' checksums, base64, then `-N`; `FULL_OBJECT`
/// is the CRC of the whole object, combined from the parts' CRCs without reading a byte.
/// `None` if the algorithm cannot be combined that way.
pub fn combine(alg: &str, full_object: bool, parts: &[(Vec<u8>, u64)]) -> Option<String> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    if full_object {
        let (crc, width) = match alg {
            "crc32" => (crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4),
            "crc32c" => (crc_fast::CrcAlgorithm::Crc32Iscsi, 4),
            "crc64nvme" => (crc_fast::CrcAlgorithm::Crc64Nvme, 8),
            _ => return None,
        };
        let mut acc: Option<u64> = None;
        for (raw, len) in parts {
            if raw.len() != width {
                return None;
            }
            let v = raw.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
            acc = Some(match acc {
                None => v,
                Some(a) => crc_fast::checksum_combine(crc, a, v, *len),
            });
        }
        let v = acc?;
        return Some(b64(&v.to_be_bytes()[8 - width..]));
    }
    let all: Vec<u8> = parts.iter().flat_map(|(raw, _)| raw.iter().copied()).collect();
    let digest = match alg {
        "crc32" => Crc32::checksum(&all).to_vec(),
        "crc32c" => Crc32c::checksum(&all).to_vec(),
        "sha1" => Sha1::checksum(&all).as_ref().to_vec(),
        "sha256" => Sha256::checksum(&all).as_ref().to_vec(),
        _ => return None,
    };
    Some(format!("{}-{}", b64(&digest), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_checksums_are_checked_and_kept() {
        let claimed = Checksum { checksum_crc32: Some("NhCmhg==".into()), ..Default::default() };
        let mut sums = wanted(&["sha256".into()], &claimed);
        sums.update(b"hello");
        let (md5, raw, computed) = sums.finish();
        assert_eq!(md5, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(computed.checksum_crc32.as_deref(), Some("NhCmhg=="));
        assert!(computed.checksum_sha256.is_some() && computed.checksum_crc32c.is_none());
        verify(&raw, &computed, Some("XUFAKrxLKna5cZ2REBfFkg=="), &claimed).unwrap();
        let wrong = Checksum { checksum_crc32: Some("AAAAAA==".into()), ..Default::default() };
        assert!(verify(&raw, &computed, None, &wrong).is_err());
        assert!(verify(&raw, &computed, Some("AAAA"), &claimed).is_err());
        assert_eq!(from_map(&to_map(&computed)), computed);
    }

    /// Combining the parts' CRCs gives the CRC of the whole; composite values name the parts.
    #[test]
    fn multipart_checksums_combine_as_s3_defines_them() {
        use base64::Engine;
        let raw = |alg: &str, data: &[u8]| {
            let mut s = wanted(&[alg.to_string()], &Checksum::default());
            s.update(data);
            let c = s.finish().2;
            base64::engine::general_purpose::STANDARD.decode(value(&c, alg).unwrap()).unwrap()
        };
        let (a, b) = (vec![1u8; 5000], vec![2u8; 777]);
        let whole = [a.clone(), b.clone()].concat();
        for alg in ["crc32", "crc32c", "crc64nvme"] {
            let parts = [(raw(alg, &a), a.len() as u64), (raw(alg, &b), b.len() as u64)];
            let expected = base64::engine::general_purpose::STANDARD.encode(raw(alg, &whole));
            assert_eq!(combine(alg, true, &parts), Some(expected), "{alg}");
        }
        let parts = [(raw("sha256", &a), 5000), (raw("sha256", &b), 777)];
        let composite = combine("sha256", false, &parts).unwrap();
        assert!(composite.ends_with("-2"));
        assert_eq!(combine("sha256", true, &parts), None);
    }
}
