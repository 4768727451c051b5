//! The transports this build offers: the one place they are registered.

use callwall_transport::VoiceTransport;

/// Every transport this build offers.
pub fn transports() -> Vec<Box<dyn VoiceTransport>> {
    vec![
        Box::new(callwall_transport_noise::NoiseTransport::default()),
        Box::new(callwall_transport_quic::QuicTransport),
        Box::new(callwall_transport_webrtc::WebrtcTransport),
        Box::new(callwall_reflector::ReflectorTransport),
    ]
}
