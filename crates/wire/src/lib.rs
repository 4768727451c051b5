//! Packet views and protocol classifiers for the callwall censor.
//!
//! Everything here is a pure function over `&[u8]`: no I/O, no clock, no allocation on the
//! parse path, and no panic on any input (property tests feed random and mutated bytes).
//! Unknown codes are data, not errors.
//!
//! What it does not do: it does not reassemble IP fragments (a non-first fragment has no
//! transport header and is reported as such), and it never decides policy; that is the
//! censor's job.
#![forbid(unsafe_code)]

pub mod dns;
pub mod dtls;
pub mod fet;
pub mod inspect;
pub mod label;
pub mod packet;
pub mod pcap;
pub mod quic;
mod reader;
pub mod rtp;
pub mod stun;
pub mod tls;
pub mod wireguard;

pub use inspect::{
    classify_datagram, classify_segment, Dir, FlowFacts, FlowInspector, InspectorConfig, Proto,
};
pub use label::{Label, Labels, UnknownLabel};
pub use packet::{Frame, IpAddr, ParseError, Transport, L4};
