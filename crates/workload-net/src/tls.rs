//! Per-run certificates: one run CA, and for each server host a certificate carrying the
//! real names an app would use (`web.whatsapp.net`, `*.googlevideo.com`, ...), signed by it.
//! Clients trust that CA only (no system roots), and check the server name as browsers do.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::WorkloadError;

/// ALPN of HTTP/1.1 over TLS (RFC 7301), used by HTTPS and WebSocket clients.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// ALPN of HTTP/3 (RFC 9114 section 3.1).
pub const ALPN_H3: &[u8] = b"h3";

/// A certificate authority that lives for one run.
pub struct RunCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A server's certificate chain and key, as PEM, to hand to a server process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The leaf certificate, then the CA's.
    pub cert_chain_pem: String,
    pub key_pem: String,
}

impl RunCa {
    /// A fresh CA with a fresh key.
    pub fn generate() -> Result<RunCa, WorkloadError> {
        let tls = |e: rcgen::Error| WorkloadError::Tls(format!("generating the run ca: {e}"));
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "callwall run ca");
        params.key_usages =
            vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().map_err(tls)?;
        let cert = params.self_signed(&key).map_err(tls)?;
        Ok(RunCa { cert, key })
    }

    /// The CA certificate that clients trust.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names, wildcards allowed), signed by this CA.
    pub fn issue(&self, names: &[String]) -> Result<Identity, WorkloadError> {
        let tls = |e: rcgen::Error| WorkloadError::Tls(format!("issuing a certificate: {e}"));
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(tls)?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(rcgen::DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().map_err(tls)?;
        let cert = params.signed_by(&key, &self.cert, &self.key).map_err(tls)?;
        Ok(Identity {
            cert_chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
        })
    }
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, WorkloadError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| WorkloadError::Tls(format!("reading certificate pem: {e}")))?;
    if certs.is_empty() {
        return Err(WorkloadError::Tls("no certificate in the pem; pass the run ca's".into()));
    }
    Ok(certs)
}

/// A server config for `identity` offering `alpn`; TLS 1.3 only when `tls13_only` (QUIC).
pub(crate) fn server_config(
    identity: &Identity,
    alpn: &[u8],
    tls13_only: bool,
) -> Result<rustls::ServerConfig, WorkloadError> {
    let chain = certs(&identity.cert_chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| WorkloadError::Tls(format!("reading the key pem: {e}")))?;
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls13_only { &[&rustls::version::TLS13] } else { rustls::DEFAULT_VERSIONS };
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| WorkloadError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| WorkloadError::Tls(format!("server certificate: {e}")))?;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// A client config trusting only `ca_pem`, offering `alpn`.
pub(crate) fn client_config(
    ca_pem: &str,
    alpn: &[u8],
    tls13_only: bool,
) -> Result<rustls::ClientConfig, WorkloadError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca_pem)? {
        roots.add(c).map_err(|e| WorkloadError::Tls(format!("run ca: {e}")))?;
    }
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls13_only { &[&rustls::version::TLS13] } else { rustls::DEFAULT_VERSIONS };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| WorkloadError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}
