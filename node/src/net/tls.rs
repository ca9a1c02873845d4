//! TLS 1.3 with node keys as identities.
//!
//! Each node presents a self-signed certificate whose public key is its
//! ed25519 node identity. There is no CA: both sides accept a peer only if
//! that key is in the current roster (the allowlist), and the TLS handshake
//! signature proves the peer holds the matching secret key. A stranger is
//! refused during the handshake, before any application byte is read.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

use ed25519_dalek::pkcs8::EncodePrivateKey;
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
};

use crate::identity::{Identity, NodeId};

/// The application protocol spoken on every connection.
pub const ALPN: &[u8] = b"dagger/1";

/// DER prefix of an ed25519 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (0 unused bits) } followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot build the node certificate: {0}")]
    Certificate(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("QUIC crypto configuration: {0}")]
    Quic(String),
}

/// The node keys allowed to connect, shared between the TLS verifiers and
/// whoever follows the roster (config now, the chain later).
#[derive(Clone, Default, Debug)]
pub struct Allowlist(Arc<RwLock<HashSet<NodeId>>>);

impl Allowlist {
    pub fn new(keys: impl IntoIterator<Item = NodeId>) -> Allowlist {
        Allowlist(Arc::new(RwLock::new(keys.into_iter().collect())))
    }

    pub fn contains(&self, key: &NodeId) -> bool {
        self.0.read().map(|set| set.contains(key)).unwrap_or(false)
    }

    /// Replaces the allowed set (a roster change). Existing connections of
    /// connections of removed keys are closed by `Peers::set`, not here.
    pub fn replace(&self, keys: impl IntoIterator<Item = NodeId>) {
        if let Ok(mut set) = self.0.write() {
            *set = keys.into_iter().collect();
        }
    }

    pub fn keys(&self) -> Vec<NodeId> {
        self.0
            .read()
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// The node key a certificate carries, if it is an ed25519 certificate.
pub fn node_id_of(cert: &CertificateDer<'_>) -> Option<NodeId> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let bytes: &[u8] = spki.as_ref();
    let key = bytes.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    key.try_into().ok()
}

/// The node's self-signed certificate and its private key.
pub fn certificate(
    identity: &Identity,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let pkcs8 = identity
        .signing_key()
        .to_pkcs8_der()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let pkcs8 = PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let params = rcgen::CertificateParams::new(vec!["dagger-node".to_string()])
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(pkcs8)))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verifies a peer certificate against the allowlist, and handshake
/// signatures with the certificate's key. Used on both sides.
#[derive(Debug)]
struct RosterVerifier {
    allow: Allowlist,
    algorithms: WebPkiSupportedAlgorithms,
}

impl RosterVerifier {
    fn new(allow: Allowlist) -> RosterVerifier {
        RosterVerifier {
            allow,
            algorithms: provider().signature_verification_algorithms,
        }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(
                "unexpected certificate chain".into(),
            ));
        }
        let id = node_id_of(end_entity).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
        if !self.allow.contains(&id) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(())
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ServerCertVerifier for RosterVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for RosterVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

/// Server side: TLS 1.3 only, client certificates required and pinned.
pub fn server_config(
    identity: &Identity,
    allow: Allowlist,
) -> Result<rustls::ServerConfig, TlsError> {
    let (cert, key) = certificate(identity)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(RosterVerifier::new(allow)))
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Client side: TLS 1.3 only, presents our certificate, pins the server's.
pub fn client_config(
    identity: &Identity,
    allow: Allowlist,
) -> Result<rustls::ClientConfig, TlsError> {
    let (cert, key) = certificate(identity)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RosterVerifier::new(allow)))
        .with_client_auth_cert(vec![cert], key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_node_key() {
        let identity = Identity::generate();
        let (cert, _) = certificate(&identity).unwrap();
        assert_eq!(node_id_of(&cert), Some(identity.id()));
        assert_eq!(node_id_of(&CertificateDer::from(vec![1, 2, 3])), None);
    }

    #[test]
    fn allowlist_replace() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let list = Allowlist::new([a]);
        assert!(list.contains(&a) && !list.contains(&b));
        list.replace([b]);
        assert!(!list.contains(&a) && list.contains(&b));
    }
}
