//! AWS Signature Version 4 on the client door (`curl --aws-sigv4 aws:amz:REGION:SERVICE -u
//! ID:SECRET`, and S3 clients later).
//!
//! cairn does not compute signatures itself: it rebuilds the request the client signed (its
//! method, path and query as sent, the headers it names in `SignedHeaders`, the payload hash
//! it declares in `x-amz-content-sha256`) and has `aws-sigv4`, AWS's own signer, sign it
//! with the key's secret at the client's `x-amz-date`; the request passes if both signatures
//! are equal (compared in constant time) and the date is within 15 minutes of now. The body is
//! not hashed here: what the signature vouches for is the declared hash, as with S3's
//! `UNSIGNED-PAYLOAD`.

use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use cairn_core::{ApiError, ErrorCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest difference between a request's `x-amz-date` and this node's clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The SHA-256 of an empty body: the payload hash of a request that declares none and has no
/// body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The parts of an `AWS4-HMAC-SHA256` authorization header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authorization {
    /// The access key id.
    pub id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn unauthenticated(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, msg)
}

/// Parses `AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX`; `None` if it is not SigV4 at all.
pub(crate) fn parse(header: &str) -> Option<Result<Authorization, ApiError>> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let malformed = || unauthenticated("malformed AWS4-HMAC-SHA256 authorization");
    let parsed = (|| {
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim) {
            match part.split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => return None,
            }
        }
        let mut scope = credential?.split('/');
        let (id, date, region, service, end) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        let signed_headers: Vec<String> = signed?.split(';').map(str::to_ascii_lowercase).collect();
        let signature = signature?;
        let ok = end == "aws4_request"
            && scope.next().is_none()
            && date.len() == 8
            && signature.len() == 64
            && signature.bytes().all(|b| b.is_ascii_hexdigit())
            && signed_headers.len() <= 64
            && signed_headers.iter().any(|h| h == "host");
        ok.then(|| Authorization {
            id: id.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    })();
    Some(parsed.ok_or_else(malformed))
}

/// `yyyymmddThhmmssZ` as a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Largest body hashed here for a SigV4 request that declares no `x-amz-content-sha256`
/// (curl before 8.x sends none): the body is read whole before the request goes on.
pub(crate) const BODY_HASH_MAX: usize = 1 << 20;

/// True if a request must have its body hashed before its signature can be checked: it is
/// SigV4-signed, declares no payload hash, and has a body.
pub(crate) fn needs_body_hash(headers: &axum::http::HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "))
        && header("x-amz-content-sha256").is_none()
        && (header("content-length").is_some_and(|l| l != "0") || header("transfer-encoding").is_some())
}

/// Checks a SigV4-signed request against the key's `secret`: `uri` is the path and query as
/// sent, `headers` the request's headers, `body_hash` the body's SHA-256 when it was hashed
/// here (see [`needs_body_hash`]).
pub(crate) fn verify(
    auth: &Authorization,
    secret: &str,
    method: &str,
    uri: &str,
    headers: &axum::http::HeaderMap,
    body_hash: Option<&str>,
) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let date = header("x-amz-date").ok_or_else(|| unauthenticated("SigV4 needs an x-amz-date header"))?;
    let time = parse_amz_date(date).ok_or_else(|| unauthenticated("malformed x-amz-date"))?;
    if !date.starts_with(&auth.date) {
        return Err(unauthenticated("x-amz-date is not the day of the credential scope"));
    }
    let now = SystemTime::now();
    let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(unauthenticated("x-amz-date is more than 15 minutes from this node's clock"));
    }
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = header(name).ok_or_else(|| unauthenticated(format!("signed header {name:?} is missing")))?;
        signed.push((name.as_str(), value));
    }
    let no_body = header("content-length").is_none_or(|l| l == "0") && header("transfer-encoding").is_none();
    let payload = match (header("x-amz-content-sha256"), body_hash) {
        (Some(hash), _) | (None, Some(hash)) => hash.to_string(),
        (None, None) if no_body => EMPTY_SHA256.to_string(),
        (None, None) => return Err(unauthenticated("a SigV4 request with a body needs x-amz-content-sha256")),
    };
    let mut settings = SigningSettings::default();
    if auth.service == "s3" {
        // S3 signs the path as sent: no second encoding, no normalisation.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let identity = aws_credential_types::Credentials::new(&auth.id, secret, None, None, "cairn").into();
    let failed = |e: &dyn std::fmt::Display| unauthenticated(format!("cannot check the signature: {e}"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let request = SignableRequest::new(method, uri, signed.into_iter(), SignableBody::Precomputed(payload))
        .map_err(|e| failed(&e))?;
    let (_, expected) = sign(request, &params).map_err(|e| failed(&e))?.into_parts();
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(unauthenticated("the signature does not match"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_parse_or_are_refused() {
        let sig = "a".repeat(64);
        let h = format!(
            "AWS4-HMAC-SHA256 Credential=CKABC/20261202/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={sig}"
        );
        let a = parse(&h).unwrap().unwrap();
        assert_eq!((a.id.as_str(), a.region.as_str(), a.service.as_str()), ("CKABC", "us-east-1", "s3"));
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        assert!(parse("Basic abc").is_none());
        for bad in [
            "AWS4-HMAC-SHA256 Credential=x",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=zz",
            "AWS4-HMAC-SHA256 Credential=a/20261202/r/s/other, SignedHeaders=host, Signature=00",
        ] {
            assert!(parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn amz_dates() {
        let t = parse_amz_date("20261202T142800Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_796_221_680);
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(UNIX_EPOCH));
        assert!(parse_amz_date("20261302T000000Z").is_none());
        assert!(parse_amz_date("2026-12-02").is_none());
    }

    #[test]
    fn a_request_signed_by_the_aws_signer_verifies_and_a_changed_one_does_not() {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        // Format `now` the way clients do, from its parts.
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let amz = format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
        let time = parse_amz_date(&amz).unwrap();
        let identity = aws_credential_types::Credentials::new("CKID", "s3cret", None, None, "t").into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = "/v1/fs/a%20b?limit=10";
        let headers =
            [("host", "127.0.0.1:7070"), ("x-amz-date", amz.as_str()), ("x-amz-content-sha256", EMPTY_SHA256)];
        let req = SignableRequest::new("GET", uri, headers.into_iter(), SignableBody::Precomputed(EMPTY_SHA256.into()))
            .unwrap();
        let (_, signature) = sign(req, &params).unwrap().into_parts();
        let header = format!(
            "AWS4-HMAC-SHA256 Credential=CKID/{}/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
            &amz[..8]
        );
        let auth = parse(&header).unwrap().unwrap();
        let mut map = axum::http::HeaderMap::new();
        for (k, v) in headers {
            map.insert(k, v.parse().unwrap());
        }
        verify(&auth, "s3cret", "GET", uri, &map, None).unwrap();
        assert!(verify(&auth, "wrong", "GET", uri, &map, None).is_err());
        assert!(verify(&auth, "s3cret", "DELETE", uri, &map, None).is_err());
        assert!(verify(&auth, "s3cret", "GET", "/v1/fs/other", &map, None).is_err());
        assert_eq!(cairn_client::tls::sha256_hex(b""), EMPTY_SHA256);
    }
}
