//! A user-space WAN emulator for DAGGER clusters.
//!
//! This machine's kernels have no `netem`, and QUIC runs over UDP, so the
//! network is emulated in user space: a [`Relay`] places one UDP socket
//! between every ordered pair of nodes (node `a` is configured to reach
//! node `b` at [`Relay::addr`]`(a, b)`) and delays, drops, rate-limits or
//! cuts each datagram as the [`Model`] decides: a one-way delay per
//! direction, jitter (in order: a path is a queue), reordering, random
//! loss, a bandwidth cap with a bounded queue, and scheduled partitions.
//! Verdicts come from one seeded generator per direction, so a run's
//! network repeats.
//!
//! The model is free of I/O ([`model`]): tests drive it directly; the
//! relay only moves bytes on its verdicts, on a thread of its own whose
//! CPU time it reports.

pub mod model;
pub mod regions;
pub mod relay;
pub mod spec;

pub use model::{LinkStats, Model, Verdict};
pub use regions::Region;
pub use relay::{Relay, RelayReport};
pub use spec::{LinkSpec, NetSpec, NodeRtt, Partition, SpecError};
