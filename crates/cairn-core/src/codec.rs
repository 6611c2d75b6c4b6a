//! The versioned binary codec for stored records and internal wire messages.
//!
//! Every encoded value starts with one format-version byte, then the postcard encoding of the
//! value. Decoding refuses unknown versions instead of guessing (see `docs/formats.md`).

use crate::error::Error;
use serde::{de::DeserializeOwned, Serialize};

/// The current format version written in front of every record.
pub const FORMAT_VERSION: u8 = 2;

/// Encodes `value` with the current format version.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serializing plain data structs into a Vec cannot fail.
    postcard::to_io(value, &mut out).expect("postcard encoding into a Vec");
    out
}

/// Decodes a value written by [`encode`]; `what` names it in the error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, Error> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|e| Error::Decode { what, why: e.to_string() })
        }
        Some((v, _)) => Err(Error::Decode { what, why: format!("unknown format version {v}") }),
        None => Err(Error::Decode { what, why: "empty input".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_refusals() {
        let v = (7u64, "x".to_string(), vec![1u8, 2, 3]);
        let b = encode(&v);
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&b, "t").unwrap(), v);
        assert!(decode::<(u64, String)>(&[], "t").is_err());
        assert!(decode::<(u64, String)>(&[9, 1, 2], "t").is_err());
        assert!(decode::<(u64, String)>(&b[..2], "t").is_err());
    }

    /// Byte strings marked `serde_bytes` (inline file data, xattr values, sealed secrets)
    /// encode exactly as the plain `Vec<u8>` they were before, so stored data still decodes.
    #[test]
    fn byte_strings_keep_the_encoding_of_byte_vectors() {
        #[derive(serde::Serialize)]
        enum Before {
            _None,
            Inline(Vec<u8>),
        }
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let now = crate::wire::Content::Inline(data.clone());
        assert_eq!(encode(&now), encode(&Before::Inline(data)));
        assert_eq!(decode::<crate::wire::Content>(&encode(&now), "content").unwrap(), now);
    }
}
