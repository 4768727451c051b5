//! End-to-end tests: they build real namespaces, start the real censor and place real calls
//! through the `callwall` binary. They need root (or unprivileged user namespaces).

mod apps;
mod audio;
mod bypass_tls;
mod bypass_udp;
mod calibration;
mod classroom;
mod common;
mod external;
mod foundation;
mod hygiene;
mod input;
mod library;
mod machine;
mod offline;
mod reliability;
mod report;
mod shard;
mod transports;
mod workloads;
