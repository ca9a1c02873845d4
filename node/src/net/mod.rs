//! QUIC transport and the gossip sync protocol.

pub mod gossip;
pub mod limits;
pub mod tls;
pub mod transport;
pub mod wire;
