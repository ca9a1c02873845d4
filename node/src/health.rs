//! Liveness and readiness. `/health` answers while the process serves
//! HTTP; `/ready` says whether the node is doing its job: its consensus
//! decides rounds, it syncs with peers, its state is verified, and (on a
//! chain-backed node) the chain answers. Load balancers and orchestrators
//! route to, and alert on, `/ready`.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use serde::Serialize;

/// A node that has not decided a round, synced with a peer or read the
/// chain for this long is not ready.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// The chain is polled every fraction of a second; a transient RPC error
/// is not yet a failure.
pub const CHAIN_STALE_AFTER: Duration = Duration::from_secs(30);

/// Progress facts the node's tasks record.
pub struct Health {
    started: Instant,
    /// Milliseconds after `started` of the last successful chain read
    /// (`u64::MAX`: never).
    chain_ok_ms: AtomicU64,
    chain_backed: bool,
    /// The last decided round seen and when it changed.
    decided: Mutex<(u64, Instant)>,
}

impl Health {
    pub fn new(chain_backed: bool) -> Health {
        let now = Instant::now();
        Health {
            started: now,
            chain_ok_ms: AtomicU64::new(u64::MAX),
            chain_backed,
            decided: Mutex::new((0, now)),
        }
    }

    /// The chain answered a read.
    pub fn chain_ok(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.chain_ok_ms.store(ms, Ordering::Relaxed);
    }

    /// Records the core's last decided round.
    pub fn observe_decided(&self, round: u64) {
        let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        if round != decided.0 {
            *decided = (round, Instant::now());
        }
    }

    /// The facts `/ready` judges, as of now.
    pub fn facts(
        &self,
        last_decided_round: u64,
        unverified_install: bool,
        peers: usize,
        last_peer_sync: Option<Duration>,
    ) -> Facts {
        self.observe_decided(last_decided_round);
        let decided = *self.decided.lock().unwrap_or_else(|p| p.into_inner());
        let chain = self
            .chain_backed
            .then(|| match self.chain_ok_ms.load(Ordering::Relaxed) {
                u64::MAX => None,
                ms => Some(
                    self.started
                        .elapsed()
                        .saturating_sub(Duration::from_millis(ms)),
                ),
            });
        Facts {
            last_decided_round,
            since_decided: decided.1.elapsed(),
            unverified_install,
            peers,
            last_peer_sync,
            chain,
        }
    }
}

/// What readiness is judged from.
#[derive(Debug, Clone)]
pub struct Facts {
    pub last_decided_round: u64,
    /// Time since the decided round last changed.
    pub since_decided: Duration,
    pub unverified_install: bool,
    /// Other roster members this node syncs with.
    pub peers: usize,
    /// Time since the most recent successful sync with any peer.
    pub last_peer_sync: Option<Duration>,
    /// Chain-backed nodes: time since the chain last answered (`None`
    /// inside: never).
    pub chain: Option<Option<Duration>>,
}

/// `/ready`'s answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// The checks that failed, each with why.
    pub failing: Vec<String>,
    pub last_decided_round: u64,
}

/// Ready when consensus decided a round recently, a peer synced recently
/// (unless the roster is this node alone), no state-synced state awaits
/// verification, and a chain-backed node's chain answered recently.
pub fn judge(facts: &Facts) -> Readiness {
    let mut failing = Vec::new();
    if facts.last_decided_round == 0 || facts.since_decided > STALE_AFTER {
        failing.push(format!(
            "consensus: no round decided for {} s (last decided round {})",
            facts.since_decided.as_secs(),
            facts.last_decided_round
        ));
    }
    if facts.peers > 0 && facts.last_peer_sync.is_none_or(|ago| ago > STALE_AFTER) {
        failing.push(match facts.last_peer_sync {
            Some(ago) => format!("peers: no successful sync for {} s", ago.as_secs()),
            None => "peers: no successful sync yet".to_string(),
        });
    }
    if facts.unverified_install {
        failing.push(
            "state: a state installed by state sync is not verified against the peers yet"
                .to_string(),
        );
    }
    match facts.chain {
        Some(None) => failing.push("chain: not reached yet".to_string()),
        Some(Some(ago)) if ago > CHAIN_STALE_AFTER => {
            failing.push(format!("chain: no successful read for {} s", ago.as_secs()))
        }
        _ => {}
    }
    Readiness {
        ready: failing.is_empty(),
        failing,
        last_decided_round: facts.last_decided_round,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Facts {
        Facts {
            last_decided_round: 40,
            since_decided: Duration::from_millis(300),
            unverified_install: false,
            peers: 3,
            last_peer_sync: Some(Duration::from_millis(20)),
            chain: Some(Some(Duration::from_secs(1))),
        }
    }

    #[test]
    fn every_check_can_fail_on_its_own() {
        assert!(judge(&healthy()).ready);
        let cases: Vec<(Facts, &str)> = vec![
            (
                Facts {
                    last_decided_round: 0,
                    ..healthy()
                },
                "consensus",
            ),
            (
                Facts {
                    since_decided: Duration::from_secs(11),
                    ..healthy()
                },
                "consensus",
            ),
            (
                Facts {
                    last_peer_sync: None,
                    ..healthy()
                },
                "peers",
            ),
            (
                Facts {
                    last_peer_sync: Some(Duration::from_secs(60)),
                    ..healthy()
                },
                "peers",
            ),
            (
                Facts {
                    unverified_install: true,
                    ..healthy()
                },
                "state",
            ),
            (
                Facts {
                    chain: Some(None),
                    ..healthy()
                },
                "chain",
            ),
            (
                Facts {
                    chain: Some(Some(Duration::from_secs(31))),
                    ..healthy()
                },
                "chain",
            ),
        ];
        for (facts, check) in cases {
            let readiness = judge(&facts);
            assert!(!readiness.ready, "{check}");
            assert_eq!(readiness.failing.len(), 1, "{:?}", readiness.failing);
            assert!(
                readiness.failing[0].starts_with(check),
                "{:?}",
                readiness.failing
            );
        }
        // A roster of one syncs with nobody; a node without a chain has none to reach.
        assert!(
            judge(&Facts {
                peers: 0,
                last_peer_sync: None,
                chain: None,
                ..healthy()
            })
            .ready
        );
    }

    #[test]
    fn the_decided_round_is_fresh_only_while_it_moves() {
        let health = Health::new(true);
        health.chain_ok();
        let facts = health.facts(5, false, 0, None);
        assert!(facts.since_decided < Duration::from_secs(1));
        assert!(judge(&facts).ready);
        assert_eq!(health.facts(5, false, 0, None).last_decided_round, 5);
        let never = Health::new(true).facts(5, false, 0, None);
        assert_eq!(never.chain, Some(None));
    }
}
