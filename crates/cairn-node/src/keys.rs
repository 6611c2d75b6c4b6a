//! Access keys on a node: making them, sealing their secrets, and checking a request's
//! credentials (HTTP Basic: `Authorization: Basic base64(ID:SECRET)`; AWS SigV4 in `sigv4`).
//!
//! Secrets are sealed with ChaCha20-Poly1305 (ring) under a key derived (BLAKE3's KDF) from
//! the cluster CA's private key. Every member holds that key in `ca.key`, outside the
//! metadata, so neither `meta.redb`, nor a snapshot, nor the Raft log reveals a secret. The
//! first node of a cluster makes an `admin` key and writes it to `<data>/admin.json` (0600).

use crate::Node;
use cairn_core::access::{is_key_id, AccessKey};
use cairn_core::wire::ClusterCommand;
use cairn_core::{ApiError, ErrorCode, FsPath};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use serde::{Deserialize, Serialize};

/// How long a node trusts a key it looked up without looking again: a deleted key stops
/// working within this (plus the time the deletion takes to reach the node).
const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_millis(500);
/// Most keys remembered at once (the cache starts over beyond).
const KEY_CACHE_MAX: usize = 4096;

/// Keys recently looked up, by id: when, the key, its secret.
pub(crate) type KeyCache =
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, AccessKey, Vec<u8>)>>;

/// What `cairn key create` prints and `admin.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyPair {
    /// The public id.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
}

/// What a new key may do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Its name.
    pub name: String,
    /// It may read.
    #[serde(default)]
    pub read: bool,
    /// It may write.
    #[serde(default)]
    pub write: bool,
    /// It may do anything.
    #[serde(default)]
    pub admin: bool,
    /// The paths it is limited to.
    #[serde(default)]
    pub prefixes: Vec<FsPath>,
}

fn denied(code: ErrorCode, msg: &str) -> ApiError {
    ApiError::new(code, msg)
}

/// The key id and secret of an `Authorization: Basic ...` header.
fn parse_basic(header: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let malformed = || denied(ErrorCode::Unauthenticated, "malformed Basic credentials");
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(denied(
            ErrorCode::Unauthenticated,
            "unsupported authorization scheme (use HTTP Basic or AWS SigV4)",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    Ok((id.to_string(), secret.to_string()))
}

/// `n` random characters from `alphabet`.
fn random_text(alphabet: &[u8], n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

impl Node {
    fn sealing_key(&self) -> LessSafeKey {
        let key = blake3::derive_key("cairn access key secrets v1", self.pki.ca_key_pem().as_bytes());
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).expect("32-byte key"))
    }

    /// `secret` sealed: a random nonce, then the ciphertext and tag.
    fn seal(&self, secret: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = secret.as_bytes().to_vec();
        self.sealing_key()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
            .expect("sealing a short secret");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The secret in `sealed`, if it opens with this cluster's key.
    fn unseal(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ciphertext.to_vec();
        let plain = self.sealing_key().open_in_place(nonce, Aad::empty(), &mut buf).ok()?;
        Some(plain.to_vec())
    }

    /// Makes a key (through Raft: every node knows it once this returns).
    pub async fn create_key(&self, spec: KeySpec) -> Result<KeyPair, ApiError> {
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const ANY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let pair =
            KeyPair { access_key_id: format!("CK{}", random_text(UPPER, 18)), secret_access_key: random_text(ANY, 40) };
        let key = AccessKey {
            name: spec.name,
            id: pair.access_key_id.clone(),
            sealed: self.seal(&pair.secret_access_key),
            read: spec.read,
            write: spec.write,
            admin: spec.admin,
            prefixes: spec.prefixes,
        };
        key.validate()?;
        self.write(ClusterCommand::PutKey { key }).await?;
        Ok(pair)
    }

    /// Removes the key named `name`.
    pub async fn delete_key(&self, name: &str) -> Result<(), ApiError> {
        self.write(ClusterCommand::DeleteKey { name: name.to_string() }).await.map(drop)
    }

    /// Every key (secrets stay sealed), as of this replica.
    pub async fn keys(&self) -> Result<Vec<AccessKey>, ApiError> {
        self.meta.read_local(cairn_meta::access_keys).await
    }

    /// The key a request proves it holds, by HTTP Basic or AWS SigV4 (`uri`: the path and
    /// query as sent; `body_hash`: the body's SHA-256 if it was hashed for SigV4): 401 `unauthenticated` without credentials or with wrong ones. Looked
    /// up in this replica (a key deleted on the leader stops working here as soon as the
    /// deletion is applied, well within a second).
    pub async fn authenticate(
        &self,
        method: &str,
        uri: &str,
        headers: &axum::http::HeaderMap,
        body_hash: Option<&str>,
    ) -> Result<AccessKey, ApiError> {
        use subtle::ConstantTimeEq;
        let unauthenticated = |m: &str| denied(ErrorCode::Unauthenticated, m);
        let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let header = header.ok_or_else(|| {
            unauthenticated("credentials needed: an access key by HTTP Basic (curl -u ID:SECRET) or AWS SigV4")
        })?;
        if let Some(signed) = crate::sigv4::parse(header) {
            let signed = signed?;
            let (key, secret) = self.key_and_secret(&signed.id).await?;
            let secret = std::str::from_utf8(&secret).map_err(|_| unauthenticated("unknown access key"))?;
            crate::sigv4::verify(&signed, secret, method, uri, headers, body_hash)?;
            return Ok(key);
        }
        let (id, secret) = parse_basic(header)?;
        let (key, expected) = self.key_and_secret(&id).await?;
        if !bool::from(secret.as_bytes().ct_eq(&expected)) {
            return Err(unauthenticated("wrong secret for this access key"));
        }
        Ok(key)
    }

    /// The key with id `id` and its unsealed secret.
    /// Found keys are remembered for [`KEY_CACHE_TTL`], so a stream of small requests does
    /// not read the table and unseal the secret each time.
    pub(crate) async fn key_and_secret(&self, id: &str) -> Result<(AccessKey, Vec<u8>), ApiError> {
        let unknown = || denied(ErrorCode::Unauthenticated, "unknown access key");
        if !is_key_id(id) {
            return Err(unknown());
        }
        if let Some((at, key, secret)) = self.key_cache.lock().expect("key cache").get(id) {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok((key.clone(), secret.clone()));
            }
        }
        let owned = id.to_string();
        let key = self.meta.read_local(move |txn| cairn_meta::access_key(txn, &owned)).await?.ok_or_else(unknown)?;
        let secret = self.unseal(&key.sealed).ok_or_else(unknown)?;
        let mut cache = self.key_cache.lock().expect("key cache");
        if cache.len() >= KEY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(id.to_string(), (std::time::Instant::now(), key.clone(), secret.clone()));
        Ok((key, secret))
    }

    /// When the cluster has no key at all (its first start, or a cluster founded anew with
    /// `--force-new-cluster`) and this node leads: makes an `admin` key and writes it to
    /// `<data>/admin.json`; returns it so it can be shown once.
    pub(crate) async fn first_admin_key(&self) -> Result<Option<KeyPair>, ApiError> {
        let path = self.config.data.join("admin.json");
        if !self.meta.is_leader() || !self.keys().await?.is_empty() {
            return Ok(None);
        }
        let spec = KeySpec { name: "admin".into(), read: true, write: true, admin: true, prefixes: vec![] };
        let pair = self.create_key(spec).await?;
        let json = serde_json::to_vec_pretty(&pair).expect("key pair serializes");
        crate::identity::write_atomic(&path, &json, 0o600)
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("writing {}: {e}", path.display())))?;
        Ok(Some(pair))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_basic, random_text};
    use proptest::prelude::*;

    /// Authorization headers, Basic or SigV4, never panic their parsers, whatever the bytes.
    fn authorization(bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        if let Ok((id, _)) = parse_basic(&text) {
            assert!(!id.contains(':'));
        }
        if let Some(Ok(a)) = crate::sigv4::parse(&text) {
            assert!(!a.id.contains('/'));
        }
    }

    #[test]
    fn fuzz_seeds_authorization() {
        cairn_core::fuzzing::corpus("auth").iter().for_each(|b| authorization(b));
        assert_eq!(parse_basic("Basic Q0s6eA==").unwrap(), ("CK".to_string(), "x".to_string()));
        assert!(parse_basic("Bearer x").is_err() && parse_basic("Basic !!").is_err());
    }

    proptest! {
        #[test]
        fn fuzz_authorization(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            authorization(&bytes);
        }

        #[test]
        fn fuzz_authorization_text(s in "(Basic|AWS4-HMAC-SHA256) [A-Za-z0-9+/=,;:/ _-]{0,300}") {
            authorization(s.as_bytes());
        }
    }

    #[test]
    fn random_text_uses_the_alphabet() {
        let t = random_text(b"AB", 64);
        assert_eq!(t.len(), 64);
        assert!(t.chars().all(|c| c == 'A' || c == 'B'));
    }
}
