//! The local network and the benchmarks, kept out of the operator node so
//! `dagger-node` never links the embedded chain.
//!
//! ```text
//! devnet       embedded chain + program + N operator nodes (in process)
//! bench        N node processes over QUIC on loopback, driven over HTTP
//! wan          the bench's network flags: the WAN emulator between the nodes
//! lease_bench  paid → active (and SSH ready) latency on a devnet
//! ```

pub mod abuse;
pub mod bench;
pub mod devnet;
pub mod lease_bench;
pub mod logs;
pub mod wan;
