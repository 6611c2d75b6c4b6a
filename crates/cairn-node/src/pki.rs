//! The cluster's PKI: a CA the first node creates, a certificate per node signed by it, and
//! the mutual-TLS configurations of the peer door built from them.
//!
//! Files in the data dir: `ca.crt` and `ca.key` (the cluster CA; every member holds it, so
//! any member can admit a node), `node.crt` and `node.key` (this node's certificate for
//! [`NODE_NAME`] and `n<id>.node.cairn`, which is how a peer's node id is read). Keys are
//! written 0600. A joining node gets the CA from the node it joins (`/v1/cluster/ca`, for
//! the cluster secret) and checks it against the fingerprint in its join token.

use crate::NodeError;
use cairn_client::tls::{self, NODE_NAME};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// A node's TLS material: the cluster CA and its own certificate.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    ca_key_pem: String,
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key_pem: String,
}

fn pki_err(data: &Path, why: impl std::fmt::Display) -> NodeError {
    NodeError::DataDir { path: data.display().to_string(), why: format!("cluster PKI: {why}") }
}

/// Writes `bytes` to `data/name` with `mode`, atomically.
fn write_file(data: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), NodeError> {
    crate::identity::write_atomic(&data.join(name), bytes, mode)
        .map_err(|e| pki_err(data, format!("writing {name}: {e}")))
}

/// How a join token starts: `cairn-join1.<CA fingerprint>.<secret>`.
const TOKEN_PREFIX: &str = "cairn-join1.";

/// The join token for `secret` in the cluster whose CA has `fingerprint`.
pub fn token(secret: &str, fingerprint: &str) -> String {
    format!("{TOKEN_PREFIX}{fingerprint}.{secret}")
}

/// The secret a `--secret` value carries, and the CA fingerprint if it is a join token (a
/// bare secret pins nothing).
pub fn parse_token(s: &str) -> (String, Option<String>) {
    match s.strip_prefix(TOKEN_PREFIX).and_then(|rest| rest.split_once('.')) {
        Some((fingerprint, secret)) => (secret.to_string(), Some(fingerprint.to_ascii_lowercase())),
        None => (s.to_string(), None),
    }
}

/// `POST /v1/cluster/ca` body: the cluster secret.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CaRequest {
    /// The cluster secret (or a join token).
    pub secret: String,
}

/// `POST /v1/cluster/ca` answer: the cluster CA, with which a joining node issues its own
/// certificate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CaReply {
    /// The CA certificate, PEM.
    pub ca_cert: String,
    /// The CA key, PEM.
    pub ca_key: String,
}

/// Fetches the cluster CA from the member at `url` (its client door) with the secret in
/// `token`; when the token carries the CA's fingerprint, a CA that does not match it is
/// refused. Retries while the member is unreachable (see `cluster::post_until_up`).
pub(crate) async fn enroll(url: &str, token: &str) -> Result<(String, String), crate::NodeError> {
    let fail = |why: String| crate::NodeError::Raft(format!("joining {url}: {why}"));
    let (secret, pinned) = parse_token(token);
    let peer = match (url.starts_with("https://"), &pinned) {
        (false, _) => cairn_client::HttpBackend::new(url).map_err(|e| fail(e.to_string()))?,
        (true, Some(fingerprint)) => {
            let config = tls::pinned_config(fingerprint).map_err(|e| fail(e.to_string()))?;
            let http = reqwest::Client::builder()
                .use_preconfigured_tls(config)
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .map_err(|e| fail(e.to_string()))?;
            cairn_client::HttpBackend::with_client(url, http).map_err(|e| fail(e.to_string()))?
        }
        (true, None) => {
            return Err(fail("joining over https needs a join token (`cairn status --secret`): it pins the CA".into()))
        }
    };
    let reply: CaReply = crate::cluster::post_until_up(&peer, "/v1/cluster/ca", &CaRequest { secret })
        .await
        .map_err(|e| fail(e.to_string()))?;
    let certs = tls::certs_from_pem(reply.ca_cert.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let got = tls::fingerprint(&certs[0]);
    match pinned {
        Some(fp) if fp != got => {
            return Err(fail(format!("its CA has fingerprint {got}, not the {fp} of the join token: not that cluster")))
        }
        Some(_) => {}
        None => tracing::warn!(
            "joining with a bare secret: trusting the CA of {url} ({got}); a join token \
             (`cairn status --secret`) would pin it"
        ),
    }
    Ok((reply.ca_cert, reply.ca_key))
}

/// The node id a node certificate was issued to (its `n<id>.node.cairn` name).
pub fn node_id_of(cert: &CertificateDer<'_>) -> Option<u64> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = x509.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::DNSName(dns) => {
            dns.strip_suffix(".node.cairn")?.strip_prefix('n')?.parse().ok()
        }
        _ => None,
    })
}

impl Pki {
    /// Loads this node's PKI from `data`, if it has one.
    pub fn load(data: &Path) -> Result<Option<Pki>, NodeError> {
        let read = |name: &str| std::fs::read_to_string(data.join(name));
        let (ca_pem, ca_key_pem, cert_pem, key_pem) =
            match (read("ca.crt"), read("ca.key"), read("node.crt"), read("node.key")) {
                (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
                (Err(e), ..) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                (a, b, c, d) => {
                    let e = [a.err(), b.err(), c.err(), d.err()].into_iter().flatten().next();
                    return Err(pki_err(data, format!("incomplete (ca.crt, ca.key, node.crt, node.key): {e:?}")));
                }
            };
        let ca = first_cert(data, &ca_pem)?;
        let chain = tls::certs_from_pem(cert_pem.as_bytes()).map_err(|e| pki_err(data, e))?;
        tls::key_from_pem(key_pem.as_bytes()).map_err(|e| pki_err(data, e))?;
        Ok(Some(Pki { ca_pem, ca_key_pem, ca, chain, key_pem }))
    }

    /// This node's PKI: loaded from its data dir; else, on a first start, a new cluster CA
    /// (founding a cluster) or the CA of the cluster it joins (fetched with the secret and
    /// checked against the join token's fingerprint).
    pub(crate) async fn obtain(
        config: &crate::NodeConfig,
        identity: &crate::identity::Identity,
    ) -> Result<Pki, NodeError> {
        if let Some(pki) = Pki::load(&config.data)? {
            return Ok(pki);
        }
        if identity.member {
            return Err(NodeError::DataDir {
                path: config.data.display().to_string(),
                why: "this member's certificates (ca.crt, ca.key, node.crt, node.key) are missing: restore them, \
                      or start on an empty data dir with --recover ID --join URL"
                    .into(),
            });
        }
        match &config.join {
            None => Pki::found(&config.data, identity.node_id),
            Some(url) => {
                let token = config.secret.clone().unwrap_or_default();
                let (ca, ca_key) = enroll(url, &token).await?;
                Pki::adopt(&config.data, identity.node_id, &ca, &ca_key)
            }
        }
    }

    /// Creates a new cluster CA in `data` and this node's certificate.
    pub fn found(data: &Path, node_id: u64) -> Result<Pki, NodeError> {
        let key = KeyPair::generate().map_err(|e| pki_err(data, e))?;
        let cert = ca_params().self_signed(&key).map_err(|e| pki_err(data, e))?;
        Self::adopt(data, node_id, &cert.pem(), &key.serialize_pem())
    }

    /// Takes the cluster CA (`ca_pem`, `ca_key_pem`) and issues this node's certificate with
    /// it; saves all four files.
    pub fn adopt(data: &Path, node_id: u64, ca_pem: &str, ca_key_pem: &str) -> Result<Pki, NodeError> {
        let ca = first_cert(data, ca_pem)?;
        let ca_key = KeyPair::from_pem(ca_key_pem).map_err(|e| pki_err(data, format!("CA key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(|e| pki_err(data, format!("CA: {e}")))?;
        let key = KeyPair::generate().map_err(|e| pki_err(data, e))?;
        let mut params = CertificateParams::new(vec![NODE_NAME.to_string(), format!("n{node_id}.node.cairn")])
            .map_err(|e| pki_err(data, e))?;
        params.distinguished_name.push(DnType::CommonName, format!("cairn node {node_id}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer).map_err(|e| pki_err(data, e))?;
        let key_pem = key.serialize_pem();
        write_file(data, "ca.key", ca_key_pem.as_bytes(), 0o600)?;
        write_file(data, "ca.crt", ca_pem.as_bytes(), 0o644)?;
        write_file(data, "node.key", key_pem.as_bytes(), 0o600)?;
        write_file(data, "node.crt", cert.pem().as_bytes(), 0o644)?;
        Ok(Pki {
            ca_pem: ca_pem.to_string(),
            ca_key_pem: ca_key_pem.to_string(),
            ca,
            chain: vec![cert.der().clone()],
            key_pem,
        })
    }

    /// The CA key, PEM (handed to a node that joins with the cluster secret).
    pub fn ca_key_pem(&self) -> &str {
        &self.ca_key_pem
    }

    /// The CA certificate's fingerprint.
    pub fn fingerprint(&self) -> String {
        tls::fingerprint(&self.ca)
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        tls::key_from_pem(self.key_pem.as_bytes()).expect("checked when loaded")
    }

    /// The peer door's server configuration: this node's certificate, and a certificate
    /// from the cluster CA demanded of every caller.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, NodeError> {
        let bad = |e: &dyn std::fmt::Display| NodeError::Config(format!("peer TLS: {e}"));
        let roots = tls::roots(std::slice::from_ref(&self.ca)).map_err(|e| bad(&e))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, tls::provider())
            .build()
            .map_err(|e| bad(&e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key())
            .map_err(|e| bad(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The client door's TLS configuration: `cert`/`key` files when given, else a
    /// certificate from the cluster CA for `host` (the name or IP in the node's URL) and
    /// [`NODE_NAME`], sent with the CA certificate so a joining node can pin it.
    pub fn client_door_config(
        &self,
        host: &str,
        files: Option<(&Path, &Path)>,
    ) -> Result<Arc<rustls::ServerConfig>, NodeError> {
        let bad = |e: &dyn std::fmt::Display| NodeError::Config(format!("client TLS: {e}"));
        let (chain, key) = match files {
            Some((cert, key)) => {
                let read = |p: &Path| std::fs::read(p).map_err(|e| bad(&format!("{}: {e}", p.display())));
                let chain = tls::certs_from_pem(&read(cert)?).map_err(|e| bad(&e))?;
                (chain, tls::key_from_pem(&read(key)?).map_err(|e| bad(&e))?)
            }
            None => {
                let ca_key = KeyPair::from_pem(&self.ca_key_pem).map_err(|e| bad(&e))?;
                let issuer = Issuer::from_ca_cert_pem(&self.ca_pem, ca_key).map_err(|e| bad(&e))?;
                let key = KeyPair::generate().map_err(|e| bad(&e))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let mut params = CertificateParams::new(vec![NODE_NAME.to_string(), "localhost".to_string()])
                    .map_err(|e| bad(&e))?;
                params.subject_alt_names.push(match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => rcgen::SanType::IpAddress(ip),
                    Err(_) => rcgen::SanType::DnsName(host.try_into().map_err(|e| bad(&e))?),
                });
                params.distinguished_name.push(DnType::CommonName, format!("cairn {host}"));
                params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
                let cert = params.signed_by(&key, &issuer).map_err(|e| bad(&e))?;
                let key = tls::key_from_pem(key.serialize_pem().as_bytes()).map_err(|e| bad(&e))?;
                (vec![cert.der().clone(), self.ca.clone()], key)
            }
        };
        let mut config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| bad(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The client configuration for calls to other nodes: the cluster CA, this node's
    /// certificate.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, NodeError> {
        tls::client_config(std::slice::from_ref(&self.ca), Some((self.chain.clone(), self.key())), true)
            .map_err(|e| NodeError::Config(format!("peer TLS: {e}")))
    }
}

/// The CA's certificate parameters.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "cairn cluster CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn first_cert(data: &Path, pem: &str) -> Result<CertificateDer<'static>, NodeError> {
    let certs = tls::certs_from_pem(pem.as_bytes()).map_err(|e| pki_err(data, e))?;
    Ok(certs.into_iter().next().expect("certs_from_pem never returns none"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_names_its_node_and_is_signed_by_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::found(dir.path(), 4242).unwrap();
        assert_eq!(node_id_of(&pki.chain[0]), Some(4242));
        assert_eq!(node_id_of(&pki.ca), None);
        let again = Pki::load(dir.path()).unwrap().unwrap();
        assert_eq!(again.fingerprint(), pki.fingerprint());
        let other = tempfile::tempdir().unwrap();
        let joined = Pki::adopt(other.path(), 7, &pki.ca_pem, pki.ca_key_pem()).unwrap();
        assert_eq!(joined.fingerprint(), pki.fingerprint());
        assert_eq!(node_id_of(&joined.chain[0]), Some(7));
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "node.key"] {
            let mode = std::fs::metadata(other.path().join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        joined.server_config().unwrap();
        joined.client_config().unwrap();
    }
}
