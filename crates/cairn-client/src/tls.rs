//! TLS on rustls with ring: configurations that trust the cluster's own CA only.
//!
//! Nodes dial each other by address, and an address may change when a node restarts, so a
//! connection between nodes checks that the certificate was signed by the cluster CA for
//! [`NODE_NAME`], the name every node certificate carries, rather than for the address
//! dialled. Clients of the REST API verify the usual way: the certificate must name the host
//! in the URL.

use crate::{ClientError, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The DNS name in every node certificate; nodes verify each other against it.
pub const NODE_NAME: &str = "node.cairn";

/// The crypto provider: ring (the only one in the build).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default rustls provider (reqwest builds every client on the
/// default). Idempotent; call it before building any HTTP client.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(format!("{what}: {e}"))
}

/// The certificates in a PEM text.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| tls_err("reading PEM certificates", e))?;
    if certs.is_empty() {
        return Err(ClientError::Protocol("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// The private key in a PEM text.
pub fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| tls_err("reading a PEM private key", e))
}

/// A store holding the given CA certificates.
pub fn roots(cas: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).map_err(|e| tls_err("adding a CA certificate", e))?;
    }
    Ok(Arc::new(roots))
}

/// A client configuration that trusts `cas` only (HTTP/2 and HTTP/1.1 offered). With
/// `identity` (certificate chain and key) it authenticates itself (mutual TLS); with
/// `any_node` it accepts any certificate the CA issued for [`NODE_NAME`] whatever host it
/// dialled (how nodes reach each other).
pub fn client_config(
    cas: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    any_node: bool,
) -> Result<rustls::ClientConfig> {
    let roots = roots(cas)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?;
    let builder = if any_node {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| tls_err("building the certificate verifier", e))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(Verifier::AnyNode(inner)))
    } else {
        builder.with_root_certificates(roots)
    };
    let mut config = match identity {
        Some((chain, key)) => {
            builder.with_client_auth_cert(chain, key).map_err(|e| tls_err("loading the client certificate", e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A client configuration for a cluster whose CA is not known yet, only its fingerprint
/// (the SHA-256 of its DER, from a join token): the server must send the CA certificate in
/// its chain, the CA must have that fingerprint, and the server's certificate must be valid
/// under it for the host dialled.
pub fn pinned_config(fingerprint: &str) -> Result<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier::Pinned(fingerprint.to_ascii_lowercase())))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a certificate's DER, lowercase hex: what a join token pins.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    sha256_hex(cert.as_ref())
}

/// How a server certificate is checked when the dialled host's name is not the point.
#[derive(Debug)]
enum Verifier {
    /// Against the cluster CA, for [`NODE_NAME`] whatever host was dialled (see
    /// [`client_config`]).
    AnyNode(Arc<WebPkiServerVerifier>),
    /// Against the CA in the server's own chain whose SHA-256 is this (see [`pinned_config`]).
    Pinned(String),
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self {
            Verifier::AnyNode(inner) => {
                let name = ServerName::try_from(NODE_NAME).expect("NODE_NAME is a DNS name");
                inner.verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
            }
            Verifier::Pinned(pinned) => {
                let refused = || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
                let ca = intermediates.iter().find(|c| fingerprint(c) == *pinned).ok_or_else(refused)?;
                let roots = roots(&[ca.clone().into_owned()]).map_err(|_| refused())?;
                let inner =
                    WebPkiServerVerifier::builder_with_provider(roots, provider()).build().map_err(|_| refused())?;
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}
