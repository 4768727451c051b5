//! TLS to the relay, trusting exactly the certificate the run's relay presents.
//!
//! The relay's certificate is self-signed and fresh per run ([`RelayInfo::tls_cert_pem`]); the
//! client pins it: the handshake succeeds only if the server's end-entity certificate is
//! byte-for-byte that certificate, and the handshake signatures verify against its key. No CA,
//! no name check (the pin is stronger), so the SNI a strategy presents can be any name.
//!
//! [`RelayInfo::tls_cert_pem`]: callwall_transport::RelayInfo

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use callwall_transport::TransportError;

/// A TLS connector that trusts only `cert_pem`, offers `alpn` (if any), and sends the
/// server_name extension only with `send_sni`.
pub(crate) fn pinned_connector(
    cert_pem: &str,
    alpn: Option<&str>,
    send_sni: bool,
) -> Result<tokio_rustls::TlsConnector, TransportError> {
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
        TransportError::Other(format!("the relay's certificate is not valid pem: {e}"))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = callwall_tls_pin::PinnedServerCert::for_der(cert.as_ref(), &provider);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Other(format!("tls configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.enable_sni = send_sni;
    if let Some(alpn) = alpn {
        config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    }
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The SNI to present: a DNS name or an IP address.
pub(crate) fn server_name(sni: &str) -> Result<ServerName<'static>, TransportError> {
    ServerName::try_from(sni.to_string())
        .map_err(|e| TransportError::Other(format!("sni {sni:?} is not a valid server name: {e}")))
}

/// The name to verify against for `sni`; for `""` (send no SNI) the relay's address, which
/// rustls never puts in a server_name extension (RFC 6066 §3: literal addresses are not
/// permitted). The pin, not the name, authenticates the relay.
pub(crate) fn server_name_or_none(
    sni: &str,
    relay: std::net::IpAddr,
) -> Result<ServerName<'static>, TransportError> {
    if sni.is_empty() {
        return Ok(ServerName::IpAddress(relay.into()));
    }
    server_name(sni)
}
