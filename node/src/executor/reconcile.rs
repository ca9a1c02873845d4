//! What the executor does about the VMs this node holds, decided without
//! I/O so tests can drive it: which VMs to destroy, which to ask the chain
//! about first, and which leases to report failed.
//!
//! Two rules protect customers and operators on a node's bad day:
//!
//! * **Nothing is destroyed on stale knowledge.** Duties computed from the
//!   past (a lost or restored ledger replays history from genesis, a state
//!   sync awaits its vouching) do not know today's leases. While duties
//!   are not fresh no VM is destroyed, and even with fresh duties a VM is
//!   destroyed only once the chain says its request is over, gone or
//!   someone else's.
//! * **A lease never bills for a VM that is gone.** An active lease of this
//!   node whose VM the provisioner does not hold (wiped disk, lost record)
//!   is reported failed after [`ABSENT_GRACE`], like a VM that died: a
//!   quorum then terminates it on-chain and accrual stops.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use dagger_client::{Request, RequestStatus};

use crate::{controller::Duties, provisioner::VmStatus};

/// Duties whose consensus time is more than this behind the wall clock
/// describe the past (the node is catching up).
pub const FRESH_WITHIN_S: i64 = 30;
/// An active lease of this node whose VM is absent this long (with fresh
/// duties all along) is reported failed.
pub const ABSENT_GRACE: Duration = Duration::from_secs(20);
/// How long an answer from the chain about a VM's request is used.
pub const CHAIN_ANSWER_TTL: Duration = Duration::from_secs(30);
/// A failure report not yet reflected is made again after this.
pub const REPORT_AGAIN: Duration = Duration::from_secs(15);

/// What the chain says about the request a VM was started for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChain {
    /// Active, assigned to this node's operator and not over: a customer
    /// pays this node for it.
    Needed,
    /// Gone, terminated, over, assigned to another operator, or still open
    /// (fresh duties are the authority on whom an open request is for).
    NotNeeded,
}

impl OnChain {
    /// Classifies `request` (None: the account does not exist) for the
    /// operator account `operator` at chain time `now_s`.
    pub fn of(request: Option<&Request>, operator: &Pubkey, now_s: i64) -> OnChain {
        let needed = request.is_some_and(|r| {
            r.status == RequestStatus::Active
                && r.assigned_operator == *operator
                && !r.is_over(now_s)
        });
        if needed {
            OnChain::Needed
        } else {
            OnChain::NotNeeded
        }
    }
}

/// What the executor sees at one step.
pub struct Seen<'a> {
    pub duties: &'a Duties,
    /// Every VM the provisioner holds, with its status.
    pub vms: &'a [(Pubkey, VmStatus)],
    /// Whether the duties are fresh (see [`Reconciler::is_fresh`]).
    pub fresh: bool,
    pub now: Instant,
}

/// What to do after one step.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Actions {
    /// VMs to destroy (the chain said their request no longer needs them).
    pub terminate: Vec<Pubkey>,
    /// VMs outside the duties to ask the chain about
    /// ([`Reconciler::learned`]) before anything is decided.
    pub ask_chain: Vec<Pubkey>,
    /// Leases to report failed (dead or absent VM).
    pub report_failed: Vec<Pubkey>,
}

#[derive(Default)]
pub struct Reconciler {
    absent_since: HashMap<Pubkey, Instant>,
    reported: HashMap<Pubkey, Instant>,
    chain: HashMap<Pubkey, (OnChain, Instant)>,
    warned_kept: BTreeSet<Pubkey>,
}

impl Reconciler {
    /// Duties as of consensus time `as_of_s` are fresh at wall-clock time
    /// `wall_s` when no unverified state is installed.
    pub fn is_fresh(as_of_s: i64, wall_s: i64, unverified_install: bool) -> bool {
        !unverified_install && as_of_s > 0 && wall_s.saturating_sub(as_of_s) <= FRESH_WITHIN_S
    }

    /// Records the chain's answer about `vm`'s request.
    pub fn learned(&mut self, vm: Pubkey, on_chain: OnChain, now: Instant) {
        self.chain.insert(vm, (on_chain, now));
    }

    pub fn step(&mut self, seen: Seen<'_>) -> Actions {
        let Seen {
            duties,
            vms,
            fresh,
            now,
        } = seen;
        let mut actions = Actions::default();
        self.chain
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < CHAIN_ANSWER_TTL);

        let keep: BTreeSet<Pubkey> = duties
            .leases
            .iter()
            .chain(duties.provision.iter().map(|(r, _)| r))
            .copied()
            .collect();
        for (vm, _) in vms {
            if keep.contains(vm) {
                self.warned_kept.remove(vm);
                continue;
            }
            if !fresh {
                continue;
            }
            match self.chain.get(vm) {
                None => actions.ask_chain.push(*vm),
                Some((OnChain::NotNeeded, _)) => actions.terminate.push(*vm),
                Some((OnChain::Needed, _)) => {
                    if self.warned_kept.insert(*vm) {
                        tracing::warn!(
                            %vm,
                            "the duties do not list this VM but its request still needs it on \
                             chain; keeping it"
                        );
                    }
                }
            }
        }

        let status: HashMap<&Pubkey, VmStatus> = vms.iter().map(|(vm, s)| (vm, *s)).collect();
        let status_of = |lease: &Pubkey| status.get(lease).copied().unwrap_or(VmStatus::Unknown);
        let mut failed: Vec<Pubkey> = duties
            .leases
            .iter()
            .filter(|l| status_of(l) == VmStatus::Failed)
            .copied()
            .collect();
        for lease in &duties.running {
            match status_of(lease) {
                VmStatus::Unknown if fresh => {
                    let since = *self.absent_since.entry(*lease).or_insert(now);
                    if now.saturating_duration_since(since) >= ABSENT_GRACE {
                        if !self.reported.contains_key(lease) {
                            tracing::warn!(
                                %lease,
                                "this node's VM for an active lease is gone; reporting it failed"
                            );
                        }
                        failed.push(*lease);
                    }
                }
                _ => {
                    self.absent_since.remove(lease);
                }
            }
        }
        self.absent_since.retain(|l, _| duties.running.contains(l));
        for lease in failed {
            let due = self
                .reported
                .get(&lease)
                .is_none_or(|t| now.saturating_duration_since(*t) >= REPORT_AGAIN);
            if due && !actions.report_failed.contains(&lease) {
                self.reported.insert(lease, now);
                actions.report_failed.push(lease);
            }
        }
        self.reported.retain(|l, _| duties.leases.contains(l));
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Pubkey {
        Pubkey::new_from_array([i; 32])
    }

    fn duties(leases: &[u8], running: &[u8]) -> Duties {
        Duties {
            leases: leases.iter().map(|i| key(*i)).collect(),
            running: running.iter().map(|i| key(*i)).collect(),
            as_of_s: 1_000,
            ..Duties::default()
        }
    }

    fn step(
        r: &mut Reconciler,
        d: &Duties,
        vms: &[(u8, VmStatus)],
        fresh: bool,
        now: Instant,
    ) -> Actions {
        let vms: Vec<(Pubkey, VmStatus)> = vms.iter().map(|(i, s)| (key(*i), *s)).collect();
        r.step(Seen {
            duties: d,
            vms: &vms,
            fresh,
            now,
        })
    }

    #[test]
    fn freshness_needs_recent_consensus_time_and_no_unverified_state() {
        assert!(Reconciler::is_fresh(1_000, 1_010, false));
        assert!(Reconciler::is_fresh(1_000, 1_000 + FRESH_WITHIN_S, false));
        assert!(!Reconciler::is_fresh(1_000, 1_001 + FRESH_WITHIN_S, false));
        assert!(!Reconciler::is_fresh(1_000, 1_010, true));
        // Genesis duties (nothing ordered yet) are never fresh.
        assert!(!Reconciler::is_fresh(0, 5, false));
    }

    #[test]
    fn stale_duties_destroy_nothing_and_judge_no_absence() {
        let mut r = Reconciler::default();
        let now = Instant::now();
        // The node replays history: its duties know none of its VMs.
        let d = duties(&[], &[]);
        let a = step(
            &mut r,
            &d,
            &[(1, VmStatus::Running), (2, VmStatus::Running)],
            false,
            now,
        );
        assert_eq!(a, Actions::default());
        // An active lease whose VM is absent, for longer than the grace,
        // while the duties are stale: nothing is reported.
        let d = duties(&[3], &[3]);
        for t in 0..10 {
            let a = step(&mut r, &d, &[], false, now + ABSENT_GRACE * t);
            assert!(a.report_failed.is_empty());
        }
    }

    #[test]
    fn a_vm_outside_fresh_duties_goes_only_when_the_chain_says_so() {
        let mut r = Reconciler::default();
        let now = Instant::now();
        let d = duties(&[1], &[1]);
        let vms = [
            (1, VmStatus::Running),
            (2, VmStatus::Running),
            (3, VmStatus::Running),
        ];
        let a = step(&mut r, &d, &vms, true, now);
        assert_eq!(a.ask_chain, vec![key(2), key(3)]);
        assert!(a.terminate.is_empty());
        r.learned(key(2), OnChain::Needed, now);
        r.learned(key(3), OnChain::NotNeeded, now);
        let a = step(&mut r, &d, &vms, true, now);
        assert_eq!(a.terminate, vec![key(3)]);
        assert!(a.ask_chain.is_empty());
        // Answers expire: the chain is asked again.
        let later = now + CHAIN_ANSWER_TTL;
        let a = step(&mut r, &d, &vms[..2], true, later);
        assert_eq!(a.ask_chain, vec![key(2)]);
    }

    #[test]
    fn an_absent_vm_of_an_active_lease_is_reported_after_the_grace() {
        let mut r = Reconciler::default();
        let now = Instant::now();
        let d = duties(&[1, 2], &[1]);
        // Lease 2 is assigned but not active yet (provisioning): its VM's
        // absence is not a failure.
        let a = step(&mut r, &d, &[], true, now);
        assert!(a.report_failed.is_empty());
        let a = step(&mut r, &d, &[], true, now + ABSENT_GRACE / 2);
        assert!(a.report_failed.is_empty());
        let a = step(&mut r, &d, &[], true, now + ABSENT_GRACE);
        assert_eq!(a.report_failed, vec![key(1)]);
        // Not again right away; again after a while.
        let a = step(&mut r, &d, &[], true, now + ABSENT_GRACE + REPORT_AGAIN / 2);
        assert!(a.report_failed.is_empty());
        let a = step(&mut r, &d, &[], true, now + ABSENT_GRACE + REPORT_AGAIN);
        assert_eq!(a.report_failed, vec![key(1)]);
    }

    #[test]
    fn a_vm_that_comes_back_or_stale_duties_reset_the_grace() {
        let mut r = Reconciler::default();
        let now = Instant::now();
        let d = duties(&[1], &[1]);
        step(&mut r, &d, &[], true, now);
        step(
            &mut r,
            &d,
            &[(1, VmStatus::Running)],
            true,
            now + ABSENT_GRACE / 2,
        );
        let a = step(&mut r, &d, &[], true, now + ABSENT_GRACE);
        assert!(a.report_failed.is_empty(), "the grace restarted");
        step(&mut r, &d, &[], false, now + ABSENT_GRACE * 3 / 2);
        let a = step(&mut r, &d, &[], true, now + ABSENT_GRACE * 2);
        assert!(a.report_failed.is_empty(), "stale duties restarted it too");
        let a = step(&mut r, &d, &[], true, now + ABSENT_GRACE * 3);
        assert_eq!(a.report_failed, vec![key(1)]);
    }

    #[test]
    fn a_failed_vm_is_reported_at_once_whatever_the_freshness() {
        let mut r = Reconciler::default();
        let now = Instant::now();
        let d = duties(&[1], &[1]);
        let a = step(&mut r, &d, &[(1, VmStatus::Failed)], false, now);
        assert_eq!(a.report_failed, vec![key(1)]);
    }

    #[test]
    fn the_chain_classifies_requests() {
        let me = key(9);
        let mut r = Request {
            customer: key(1),
            request_id: 0,
            spec: dagger_client::VmSpec {
                vcpus: 1,
                memory_mib: 1,
                disk_gib: 1,
                region: 0,
                image_id: [1; 32],
                ssh_key: [1; 32],
            },
            price_per_second: 1,
            duration: 100,
            deposit: 100,
            paid_out: 0,
            created_at: 0,
            deadline: 50,
            status: RequestStatus::Open,
            assigned_operator: Pubkey::default(),
            endpoint_hash: [0; 32],
            lease_start: 0,
            ended_at: 0,
            fee_bps: 0,
            nonce: 1,
            bump: 0,
            escrow_bump: 0,
            provision_stake: 0,
            provision_epoch: 0,
        };
        assert_eq!(OnChain::of(None, &me, 10), OnChain::NotNeeded);
        assert_eq!(OnChain::of(Some(&r), &me, 10), OnChain::NotNeeded);
        r.status = RequestStatus::Active;
        r.lease_start = 60;
        r.assigned_operator = me;
        assert_eq!(OnChain::of(Some(&r), &me, 100), OnChain::Needed);
        assert_eq!(
            OnChain::of(Some(&r), &me, 160),
            OnChain::NotNeeded,
            "paid time over"
        );
        assert_eq!(OnChain::of(Some(&r), &key(8), 100), OnChain::NotNeeded);
        r.status = RequestStatus::Terminated;
        assert_eq!(OnChain::of(Some(&r), &me, 100), OnChain::NotNeeded);
    }
}
