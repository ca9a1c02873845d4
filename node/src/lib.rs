//! The DAGGER operator node.
//!
//! ```text
//! net/        QUIC transport (quinn + rustls, roster-pinned TLS), wire format, gossip
//! core        the consensus driver: owns the hashgraph and the ledger
//! store/      redb ledger: events, order, snapshots
//! api         HTTP status API and metrics
//! images/     VM images by content hash; the default image builder
//! provisioner/ VM backends: QEMU micro-VMs, or a simulated one
//! config      TOML / flags / env settings
//! node        assembles a running node
//! ```

pub mod api;
pub mod chain;
pub mod config;
pub mod controller;
pub mod core;
pub mod executor;
pub mod explorer;
pub mod health;
pub mod http;
pub mod identity;
pub mod images;
pub mod metrics;
pub mod net;
pub mod node;
pub mod provisioner;
pub mod signing_record;
pub mod store;
pub mod task;
