//! The emulator's decisions, free of I/O: given a datagram, its direction,
//! its size and the time, when it arrives or why it does not. The relay
//! ([`crate::Relay`]) only moves bytes on these verdicts, so tests drive
//! this directly.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::spec::NetSpec;

/// Longest a reordered datagram is held back beyond its delay (see
/// [`crate::LinkSpec::reorder`]).
pub const REORDER_HOLD: Duration = Duration::from_millis(10);

/// Why a datagram was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Random loss.
    Loss,
    /// A partition separates the two nodes.
    Partition,
    /// The bandwidth-capped link's queue was full.
    Queue,
}

/// What happens to one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it at this time (since the epoch).
    Deliver(Duration),
    Drop(Drop),
}

/// Counters of one direction of a link, or of a whole network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub datagrams: u64,
    pub bytes: u64,
    pub lost: u64,
    pub cut: u64,
    pub queue_dropped: u64,
    /// Held back so that later datagrams overtook them (`reorder`).
    pub reordered: u64,
}

impl LinkStats {
    fn add(&mut self, other: &LinkStats) {
        self.datagrams += other.datagrams;
        self.bytes += other.bytes;
        self.lost += other.lost;
        self.cut += other.cut;
        self.queue_dropped += other.queue_dropped;
        self.reordered += other.reordered;
    }
}

struct LinkState {
    rng: ChaCha8Rng,
    /// When a bandwidth-capped link finishes sending what it has queued.
    busy_until: Duration,
    /// The latest delivery time given to an in-order datagram: a path is
    /// a queue, so jitter delays datagrams without letting them overtake
    /// each other (only `reorder` does).
    last_delivery: Duration,
    stats: LinkStats,
}

/// The state of every directed link of a [`NetSpec`].
pub struct Model {
    spec: NetSpec,
    links: Vec<LinkState>,
    /// Partition times count from here (model time); none is in force
    /// before it is set.
    epoch: Option<Duration>,
}

impl Model {
    pub fn new(spec: NetSpec) -> Model {
        let n = spec.nodes();
        let links = (0..n * n)
            .map(|i| LinkState {
                // One generator per direction: a verdict depends on the
                // datagrams of its own link only, not on how the others'
                // arrivals interleave with it.
                rng: ChaCha8Rng::seed_from_u64(
                    spec.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
                busy_until: Duration::ZERO,
                last_delivery: Duration::ZERO,
                stats: LinkStats::default(),
            })
            .collect();
        Model {
            spec,
            links,
            epoch: None,
        }
    }

    /// Partitions' times count from `at` (model time) on; until an epoch
    /// is set, and before it, none is in force. Links keep their state: a
    /// queue is not reset.
    pub fn set_epoch(&mut self, at: Duration) {
        self.epoch = Some(at);
    }

    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// A datagram of `bytes` leaves `from` for `to` at `now`.
    pub fn send(&mut self, from: usize, to: usize, bytes: usize, now: Duration) -> Verdict {
        let n = self.spec.nodes();
        let link = self.spec.links[from][to];
        let cut = self
            .epoch
            .and_then(|epoch| now.checked_sub(epoch))
            .is_some_and(|since| self.spec.cut(from, to, since));
        let state = &mut self.links[from * n + to];
        state.stats.datagrams += 1;
        state.stats.bytes += bytes as u64;
        if cut {
            state.stats.cut += 1;
            return Verdict::Drop(Drop::Partition);
        }
        if link.loss > 0.0 && state.rng.gen_bool(link.loss) {
            state.stats.lost += 1;
            return Verdict::Drop(Drop::Loss);
        }
        let mut leaves = now;
        if let Some(bps) = link.bandwidth_bps.filter(|&bps| bps > 0) {
            let start = state.busy_until.max(now);
            if start - now > link.max_queue() {
                state.stats.queue_dropped += 1;
                return Verdict::Drop(Drop::Queue);
            }
            let on_wire =
                Duration::from_nanos((bytes as u64 * 8).saturating_mul(1_000_000_000) / bps);
            state.busy_until = start + on_wire;
            leaves = state.busy_until;
        }
        let mut delay = link.delay;
        if !link.jitter.is_zero() {
            let spread = link.jitter.as_nanos() as i64;
            let offset = state.rng.gen_range(-spread..=spread);
            delay = Duration::from_nanos((delay.as_nanos() as i64 + offset).max(0) as u64);
        }
        let at = (leaves + delay).max(state.last_delivery);
        if link.reorder > 0.0 && state.rng.gen_bool(link.reorder) {
            // Held back outside the queue: what follows may overtake it,
            // and it holds nothing up (the queue's clock stays).
            state.stats.reordered += 1;
            let hold = state.rng.gen_range(1..=REORDER_HOLD.as_nanos() as u64);
            return Verdict::Deliver(at + Duration::from_nanos(hold));
        }
        state.last_delivery = at;
        Verdict::Deliver(at)
    }

    /// Counters summed over every link.
    pub fn totals(&self) -> LinkStats {
        let mut total = LinkStats::default();
        for link in &self.links {
            total.add(&link.stats);
        }
        total
    }

    /// Counters of the direction `from` → `to`.
    pub fn link_stats(&self, from: usize, to: usize) -> LinkStats {
        self.links[from * self.spec.nodes() + to].stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{LinkSpec, Partition};
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn deliveries(
        model: &mut Model,
        from: usize,
        to: usize,
        sends: &[(u64, usize)],
    ) -> Vec<Verdict> {
        sends
            .iter()
            .map(|&(at_us, bytes)| model.send(from, to, bytes, Duration::from_micros(at_us)))
            .collect()
    }

    proptest! {
        /// Without loss or a cap, every datagram arrives within delay ±
        /// jitter of its sending, never before it was sent, and in the
        /// order it was sent.
        #[test]
        fn delays_stay_within_the_jitter_bounds(
            rtt_ms in 0u32..400, jitter_ms in 0u32..50, seed: u64,
            sends in proptest::collection::vec((0u64..10_000_000, 1usize..1500), 1..200),
        ) {
            let link = LinkSpec { jitter: jitter_ms * MS, ..LinkSpec::default() };
            let mut spec = NetSpec::uniform(3, rtt_ms * MS, link);
            spec.seed = seed;
            let mut model = Model::new(spec);
            let mut sorted = sends.clone();
            sorted.sort();
            let mut last = Duration::ZERO;
            for &(at_us, bytes) in &sorted {
                let now = Duration::from_micros(at_us);
                let Verdict::Deliver(at) = model.send(0, 2, bytes, now) else {
                    panic!("dropped without loss");
                };
                let delay = at - now;
                prop_assert!(delay >= (rtt_ms * MS / 2).saturating_sub(jitter_ms * MS));
                prop_assert!(delay <= rtt_ms * MS / 2 + jitter_ms * MS);
                // A path is a queue: jitter never reorders.
                prop_assert!(at >= last);
                last = at;
            }
            prop_assert_eq!(model.totals().datagrams, sends.len() as u64);
        }

        /// A run is a function of its seed, and each link's verdicts depend
        /// on its own datagrams only: interleaving another link's traffic
        /// changes nothing.
        #[test]
        fn verdicts_repeat_per_link_whatever_else_is_sent(
            seed: u64, loss in 0.0f64..0.5,
            sends in proptest::collection::vec((0u64..1_000_000, 1usize..1500), 1..100),
        ) {
            let link = LinkSpec { jitter: 5 * MS, loss, ..LinkSpec::default() };
            let mut spec = NetSpec::uniform(3, 40 * MS, link);
            spec.seed = seed;
            let mut sorted = sends.clone();
            sorted.sort();
            let mut alone = Model::new(spec.clone());
            let a = deliveries(&mut alone, 0, 1, &sorted);
            let mut busy = Model::new(spec);
            let b: Vec<Verdict> = sorted
                .iter()
                .map(|&(at_us, bytes)| {
                    busy.send(1, 0, 99, Duration::from_micros(at_us));
                    busy.send(0, 1, bytes, Duration::from_micros(at_us))
                })
                .collect();
            prop_assert_eq!(a, b);
        }

        /// A capped link never carries more than its rate: deliveries are
        /// spaced by at least each datagram's time on the wire, and what
        /// would queue longer than the buffer is dropped.
        #[test]
        fn a_bandwidth_cap_spaces_and_drops(
            sends in proptest::collection::vec((0u64..100_000, 100usize..1500), 1..300),
        ) {
            let bps = 10_000_000u64;
            let link = LinkSpec { bandwidth_bps: Some(bps), ..LinkSpec::default() };
            let mut model = Model::new(NetSpec::uniform(2, 10 * MS, link));
            let mut sorted = sends.clone();
            sorted.sort();
            let mut last: Option<Duration> = None;
            for &(at_us, bytes) in &sorted {
                let now = Duration::from_micros(at_us);
                match model.send(0, 1, bytes, now) {
                    Verdict::Deliver(at) => {
                        let wire = Duration::from_nanos(bytes as u64 * 8 * 1_000_000_000 / bps);
                        prop_assert!(at >= now + 5 * MS + wire);
                        if let Some(prev) = last {
                            prop_assert!(at >= prev + wire);
                        }
                        prop_assert!(at - now <= 5 * MS + link.max_queue() + wire);
                        last = Some(at);
                    }
                    Verdict::Drop(why) => prop_assert_eq!(why, Drop::Queue),
                }
            }
        }
    }

    #[test]
    fn reordered_datagrams_are_overtaken_and_hold_nothing_up() {
        let link = LinkSpec {
            reorder: 0.05,
            ..LinkSpec::default()
        };
        let mut model = Model::new(NetSpec::uniform(2, 100 * MS, link));
        let mut in_order = Duration::ZERO;
        let mut overtaken = 0;
        let mut arrivals = Vec::new();
        for i in 0..20_000u64 {
            let now = Duration::from_micros(i * 100);
            let Verdict::Deliver(at) = model.send(0, 1, 1200, now) else {
                panic!("dropped without loss");
            };
            assert!(at >= now + 50 * MS && at <= now + 50 * MS + REORDER_HOLD);
            arrivals.push(at);
        }
        let reordered = model.link_stats(0, 1).reordered;
        assert!((800..1_200).contains(&reordered), "{reordered} reordered");
        // Every datagram not held back arrives after every earlier one
        // that was not; a held-back one is overtaken by some later one.
        for (i, at) in arrivals.iter().enumerate() {
            if arrivals[i + 1..].iter().take(200).any(|later| later < at) {
                overtaken += 1;
            } else {
                assert!(*at >= in_order);
                in_order = *at;
            }
        }
        // (Held-back datagrams among the last 10 ms have nothing after
        // them to be overtaken by.)
        assert!(overtaken <= reordered && reordered - overtaken <= 20);
    }

    #[test]
    fn loss_converges_to_its_rate() {
        let link = LinkSpec {
            loss: 0.01,
            ..LinkSpec::default()
        };
        let mut model = Model::new(NetSpec::uniform(2, 100 * MS, link));
        let lost = (0..200_000)
            .filter(|i| {
                model.send(0, 1, 1200, Duration::from_micros(*i)) == Verdict::Drop(Drop::Loss)
            })
            .count();
        assert!(
            (1_600..2_400).contains(&lost),
            "{lost} of 200 000 lost at 1 %"
        );
        assert_eq!(model.link_stats(0, 1).lost, lost as u64);
        assert_eq!(model.link_stats(1, 0), LinkStats::default());
    }

    #[test]
    fn a_partition_drops_across_groups_only_while_it_lasts() {
        let spec = NetSpec::uniform(4, 20 * MS, LinkSpec::default())
            .with_partitions(vec!["0,1|2,3@1s-2s".parse::<Partition>().unwrap()])
            .unwrap();
        let mut model = Model::new(spec);
        model.set_epoch(Duration::ZERO);
        let s = Duration::from_secs(1);
        assert!(matches!(model.send(0, 2, 100, s / 2), Verdict::Deliver(_)));
        assert_eq!(model.send(0, 2, 100, s), Verdict::Drop(Drop::Partition));
        assert_eq!(
            model.send(3, 1, 100, s * 3 / 2),
            Verdict::Drop(Drop::Partition)
        );
        assert_eq!(
            model.send(2, 3, 100, s * 3 / 2),
            Verdict::Deliver(s * 3 / 2 + 10 * MS)
        );
        assert!(matches!(model.send(0, 2, 100, 2 * s), Verdict::Deliver(_)));
        assert_eq!(model.totals().cut, 2);
    }

    #[test]
    fn partitions_count_from_the_epoch_and_queues_survive_it() {
        let link = LinkSpec {
            bandwidth_bps: Some(8_000_000),
            ..LinkSpec::default()
        };
        let spec = NetSpec::uniform(2, Duration::ZERO, link)
            .with_partitions(vec![Partition::isolate(
                1,
                Duration::ZERO,
                Duration::from_secs(1),
            )])
            .unwrap();
        let mut model = Model::new(spec);
        let t = Duration::from_secs(30);
        // 1 000 bytes at 8 Mbit/s: 1 ms on the wire. No epoch yet: no cut.
        assert_eq!(model.send(0, 1, 1000, Duration::ZERO), Verdict::Deliver(MS));
        model.set_epoch(Duration::ZERO);
        assert_eq!(
            model.send(0, 1, 1000, Duration::ZERO),
            Verdict::Drop(Drop::Partition)
        );
        assert_eq!(
            model.send(0, 1, 1000, t),
            Verdict::Deliver(t + MS),
            "the cut is over"
        );
        model.set_epoch(t);
        assert_eq!(
            model.send(0, 1, 1000, t - MS),
            Verdict::Deliver(t + 2 * MS),
            "before the epoch"
        );
        assert_eq!(
            model.send(0, 1, 1000, t + MS),
            Verdict::Drop(Drop::Partition)
        );
        model.set_epoch(t + Duration::from_secs(5));
        assert_eq!(
            model.send(0, 1, 1000, t + 3 * MS),
            Verdict::Deliver(t + 4 * MS)
        );
    }
}
