//! QUIC transport and the gossip sync protocol.

pub mod gossip;
pub mod limits;
pub mod state_sync;
pub mod tls;
pub mod transport;
pub mod wire;
