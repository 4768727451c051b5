//! Certificate pinning for rustls clients.
//!
//! callwall's peers and relays use a fresh self-signed certificate per call or per run, and the
//! client learns it out of band (its SHA-256 through signalling, or the relay's PEM from the
//! harness). [`PinnedServerCert`] trusts exactly that certificate: the server's end-entity
//! certificate must hash to the pin, and the handshake signatures must verify against its key
//! (so the server holds the private key).
//!
//! Guarantees: no CA and no system roots are consulted, and no other certificate is accepted.
//! What it does not check: the server name (the pin is stronger, so a strategy may present any
//! SNI) and validity dates (the certificates live for one run).
#![forbid(unsafe_code)]

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// SHA-256 of `bytes` (of a certificate's DER, for a pin).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Trusts exactly one certificate, identified by the SHA-256 of its DER.
#[derive(Debug)]
pub struct PinnedServerCert {
    pinned: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedServerCert {
    /// Pins the certificate whose DER hashes to `sha256`; signatures are checked with
    /// `provider`'s algorithms.
    pub fn new(sha256: [u8; 32], provider: &CryptoProvider) -> Self {
        PinnedServerCert { pinned: sha256, algorithms: provider.signature_verification_algorithms }
    }

    /// Pins the certificate with this DER.
    pub fn for_der(der: &[u8], provider: &CryptoProvider) -> Self {
        PinnedServerCert::new(sha256(der), provider)
    }
}

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if sha256(end_entity.as_ref()) == self.pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
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
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_pinned_certificate() {
        let provider = rustls::crypto::ring::default_provider();
        let v = PinnedServerCert::for_der(b"certificate one", &provider);
        let name = ServerName::try_from("any.name").unwrap();
        let now = UnixTime::now();
        let ok = CertificateDer::from(b"certificate one".to_vec());
        let other = CertificateDer::from(b"certificate two".to_vec());
        assert!(v.verify_server_cert(&ok, &[], &name, &[], now).is_ok());
        assert!(v.verify_server_cert(&other, &[], &name, &[], now).is_err());
        assert!(!v.supported_verify_schemes().is_empty());
    }

    #[test]
    fn sha256_known_answer() {
        let d = sha256(b"abc");
        assert_eq!(d[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
