//! TLS for the QUIC transport: a fresh self-signed certificate per call, a client verifier that
//! trusts exactly that certificate, and the ALPN padding that makes a ClientHello span two
//! Initial packets.
//!
//! Everything here uses rustls's `ring` provider and TLS 1.3 only (QUIC requires 1.3,
//! RFC 9001 section 4.2).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// ClientHello bytes one client Initial carries: a 1200-byte datagram (RFC 9000 section 14.1)
/// minus quinn 0.11's long header (a 20-byte DCID, an 8-byte SCID, a 2-byte length, up to a
/// 4-byte packet number: about 40 bytes), the AEAD tag (16) and the CRYPTO frame header (up to
/// 5). Measured by `tests/bypass.rs` (`quic_split_spreads_the_hello_over_exactly_n_initials`).
pub const INITIAL_CRYPTO_CAPACITY: usize = 1135;

/// Transport parameters quinn puts in the ClientHello, about (RFC 9000 section 18); only used
/// to size the padding, with half an Initial of margin either way.
const QUINN_PARAMS_ESTIMATE: usize = 90;

/// Length of one padding protocol name (ALPN names are at most 255 bytes, RFC 7301 section 3.1).
const PADDING_NAME_LEN: usize = 220;

/// The rustls crypto provider every config here uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A call's certificate: the DER of a fresh self-signed certificate for one name, its key, and
/// the SHA-256 the caller pins.
pub struct CallCertificate {
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for CallCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCertificate")
            .field("sha256", &hex(&self.sha256))
            .finish_non_exhaustive()
    }
}

/// Why a certificate or a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a certificate for {name:?}: {source}")]
    Certificate { name: String, source: rcgen::Error },
    #[error("tls server config: {0}")]
    ServerConfig(rustls::Error),
    #[error("tls server certificate: {0}")]
    ServerCertificate(rustls::Error),
    #[error("tls client config: {0}")]
    ClientConfig(rustls::Error),
}

impl CallCertificate {
    /// Generates an ECDSA P-256 certificate naming `name` (a DNS name or an IP address).
    pub fn generate(name: &str) -> Result<CallCertificate, TlsError> {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_string()])
            .map_err(|source| TlsError::Certificate { name: name.to_string(), source })?;
        let cert = certified.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let sha256 = sha256(&cert);
        Ok(CallCertificate { cert, key, sha256 })
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    callwall_tls_pin::sha256(bytes)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lowercase or uppercase hex into exactly 32 bytes.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The server side: presents `cert`, accepts only `alpn`, no client authentication.
pub fn server_config(cert: &CallCertificate, alpn: &str) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::ServerConfig)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.clone()], PrivateKeyDer::Pkcs8(cert.key.clone_key()))
        .map_err(TlsError::ServerCertificate)?;
    config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    Ok(config)
}

/// The client side: trusts only the certificate whose SHA-256 is `pinned`, offers `alpns` in
/// that order, sends no client certificate, never resumes (a fresh certificate per call).
pub fn client_config(
    pinned: [u8; 32],
    alpns: Vec<Vec<u8>>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(callwall_tls_pin::PinnedServerCert::new(pinned, &provider));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::ClientConfig)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpns;
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// The ALPN list a caller offers: the real protocol first, then, when `split` is `Some(n)`
/// (n >= 2), padding protocols named deterministically from `seed` that bring the ClientHello
/// to about `n - 1/2` Initials' worth of CRYPTO data ([`INITIAL_CRYPTO_CAPACITY`]), so quinn
/// sends it in exactly `n` Initial packets (half an Initial of margin either way).
///
/// The server only knows the real protocol, so it always selects it (RFC 7301 section 3.2:
/// the server picks from the client's list); padding names are never negotiated.
pub fn alpn_list(alpn: &str, split: Option<u8>, seed: u64, sni: &str) -> Vec<Vec<u8>> {
    let mut list = vec![alpn.as_bytes().to_vec()];
    let Some(n) = split.filter(|n| *n >= 2) else { return list };
    let base = client_hello_len(list.clone(), sni).unwrap_or(400);
    let target = (usize::from(n) - 1) * INITIAL_CRYPTO_CAPACITY + INITIAL_CRYPTO_CAPACITY / 2;
    let mut missing = target.saturating_sub(base);
    let mut i = 0u64;
    while missing > 1 {
        // Each name costs its length plus a 1-byte length prefix (RFC 7301 section 3.1).
        let len = (missing - 1).min(PADDING_NAME_LEN);
        let mut name = padding_name(seed, i);
        name.truncate(len.max(3));
        missing = missing.saturating_sub(name.len() + 1);
        list.push(name);
        i += 1;
    }
    list
}

/// The size of the ClientHello rustls writes for QUIC with `alpns` and `sni` (and about
/// quinn's transport parameters), or `None` if `sni` is not a valid name.
pub fn client_hello_len(alpns: Vec<Vec<u8>>, sni: &str) -> Option<usize> {
    let config = Arc::new(client_config([0; 32], alpns).ok()?);
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).ok()?;
    let params = vec![0u8; QUINN_PARAMS_ESTIMATE];
    let mut conn =
        rustls::quic::ClientConnection::new(config, rustls::quic::Version::V1, name, params)
            .ok()?;
    let mut hello = Vec::new();
    conn.write_hs(&mut hello);
    Some(hello.len())
}

/// A printable protocol name of [`PADDING_NAME_LEN`] bytes: `x-` then lowercase hex derived
/// from the seed, so runs with one seed send the same bytes.
fn padding_name(seed: u64, index: u64) -> Vec<u8> {
    let mut name = b"x-".to_vec();
    let mut counter = 0u64;
    while name.len() < PADDING_NAME_LEN {
        let mut h = Sha256::new();
        h.update(b"callwall quic-split alpn padding");
        h.update(seed.to_be_bytes());
        h.update(index.to_be_bytes());
        h.update(counter.to_be_bytes());
        name.extend(hex(&h.finalize()).bytes());
        counter += 1;
    }
    name.truncate(PADDING_NAME_LEN);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_client_hello_sizes_follow_n() {
        let plain = client_hello_len(alpn_list("h3", None, 7, "a.b"), "a.b").unwrap();
        assert!(plain < 600, "plain ClientHello {plain} bytes");
        for n in 2..=8u8 {
            let len = client_hello_len(alpn_list("h3", Some(n), 7, "a.b"), "a.b").unwrap();
            let lo = (usize::from(n) - 1) * INITIAL_CRYPTO_CAPACITY;
            let hi = usize::from(n) * INITIAL_CRYPTO_CAPACITY;
            assert!(lo + 200 < len && len + 200 < hi, "n={n}: {len} bytes not within ({lo}, {hi})");
        }
    }

    #[test]
    fn alpn_padding_is_deterministic_and_real_protocol_first() {
        let a = alpn_list("h3", Some(2), 1, "a.b");
        assert_eq!(a, alpn_list("h3", Some(2), 1, "a.b"));
        assert_ne!(a, alpn_list("h3", Some(2), 2, "a.b"));
        assert_eq!(a[0], b"h3");
        assert!(a[1..].iter().all(|p| p.len() <= PADDING_NAME_LEN && p.starts_with(b"x-")));
        assert_eq!(alpn_list("h3", None, 1, "a.b"), vec![b"h3".to_vec()]);
    }

    #[test]
    fn sha256_hex_round_trip() {
        let d = sha256(b"abc");
        let h = hex(&d);
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(parse_sha256_hex(&h), Some(d));
        assert_eq!(parse_sha256_hex(&h.to_uppercase()), Some(d));
        assert_eq!(parse_sha256_hex(&h[..62]), None);
        assert_eq!(parse_sha256_hex(&format!("{}zz", &h[..62])), None);
        assert_eq!(parse_sha256_hex("é"), None);
    }

    #[test]
    fn certificate_names_the_sni() {
        let c = CallCertificate::generate("www.example.com").unwrap();
        assert_eq!(c.sha256, sha256(&c.cert));
        server_config(&c, "h3").unwrap();
    }
}
