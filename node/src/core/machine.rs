//! The node's consensus state machine, free of I/O (like quinn-proto
//! beneath quinn): it owns the hashgraph, the mempool and the record
//! keeping, takes inputs (received events, pulls, ticks with the time,
//! submitted transactions, ledger acknowledgements) and queues outputs
//! (writes for the ledger, decided rounds). It only reads the ledger, for
//! catch-ups and lookups; every write is an [`Output::Persist`] that the
//! driver applies in order. Deterministic tests drive it directly and crash
//! it between any two writes.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use dagger_consensus::{
    CreateError, CreatorId, Decided, Equivocation, Event, EventId, EventInfo, Hashgraph,
    InsertOutcome, Reject,
};

use super::{
    checkpoint::Checkpoint,
    forward::{max_sealed, Delivered, Envelope, ForwardError, MAX_FORWARD_WINDOW_NS},
    hex,
    mempool::{Mempool, SubmitId},
    records::Records,
    reject_label, CoreConfig, CoreStatus, OrderObserver, ReceiveSummary, SubmitError,
};
use crate::{
    identity::Identity,
    metrics::Metrics,
    signing_record::{self, Entry, Guard, Head, Resume},
    store::{LedgerView, Write},
};

/// After a restart, the node creates no event while a pull still brings
/// more than this many events (it is catching up): see `may_create`.
const RESUME_QUIET_EVENTS: usize = 64;

/// Equivocation evidence kept for `/evidence`.
const MAX_EVIDENCE: usize = 256;
/// Pairs kept per creator (one is enough to slash it).
pub(super) const MAX_EVIDENCE_PER_CREATOR: usize = 4;

/// The time, as the machine sees it: monotonic for its timers, wall clock
/// for event timestamps. Tests pass synthetic values.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub instant: Instant,
    pub unix_ns: u64,
}

impl Now {
    pub fn system() -> Now {
        Now {
            instant: Instant::now(),
            unix_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }

    /// Whole seconds since the Unix epoch (what the chain's clock counts).
    pub fn unix_s(&self) -> i64 {
        (self.unix_ns / 1_000_000_000) as i64
    }
}

/// What the machine asks its driver to do.
#[derive(Debug)]
pub enum Output {
    /// Apply to the ledger, after every earlier `Persist`. With `own`, the
    /// commit must be durable (fsync) before the event leaves the node and
    /// its submitters are answered; then report it with
    /// [`Machine::on_durable`].
    Persist {
        write: Box<Write>,
        own: Option<OwnEvent>,
    },
    /// A decided round, for subscribers (the controller's duties, tests).
    Decided(Arc<Decided>),
    /// Store this signing-record entry durably (fsync) before applying any
    /// later output: an own event it covers follows.
    Record(Entry),
    /// Send this envelope of forwarded transactions to the peers (they
    /// carry it in their events; see `super::forward`).
    Forward(Vec<u8>),
}

/// What a peer that pulled gets.
#[derive(Debug, Default)]
pub struct SyncAnswer {
    /// What to read from the ledger and send first (see
    /// [`super::catch_up::read`]): done by the answering task, off the
    /// consensus actor.
    pub ledger: super::catch_up::LedgerReads,
    /// Events from memory it is missing, parents first (after those).
    pub events: Vec<Event>,
}

/// Where an event is, as far as the consensus core knows.
#[derive(Debug)]
pub enum EventLookup {
    Held(Event, Option<EventInfo>),
    /// Not durable yet: not to be shown.
    NotYet,
    /// Not in memory: the ledger may have it.
    AskLedger,
}

/// A new own event and the submissions it acknowledges once durable.
#[derive(Debug)]
pub struct OwnEvent {
    pub event: Event,
    pub submitters: Vec<SubmitId>,
}

pub struct Machine {
    pub(super) hg: Hashgraph,
    pub(super) ledger: Arc<dyn LedgerView>,
    pub(super) identity: Identity,
    pub(super) config: CoreConfig,
    pub(super) metrics: Arc<Metrics>,
    pub(super) observer: Box<dyn OrderObserver>,
    pub(super) mempool: Mempool,
    pub(super) records: Records,
    /// Envelopes the order delivered (state every node holds alike).
    pub(super) delivered: Delivered,
    /// Consensus time of the last ordered event.
    pub(super) order_time_ns: u64,
    /// Own transactions delivered through envelopes (status).
    pub(super) forwarded_txs: u64,
    /// Own events handed out for persisting and not yet reported durable:
    /// kept out of sync answers and lookups, so no peer can learn of an
    /// event a crash could make this node sign again.
    pub(super) undurable: HashSet<EventId>,
    /// Every held event (anyone's) carrying transactions and not ordered
    /// yet: while there are some, the node gossips at full speed so they
    /// reach consensus quickly wherever they were submitted.
    pub(super) unordered_with_txs: HashSet<EventId>,
    pub(super) outputs: VecDeque<Output>,
    pub(super) last_own_event: Instant,
    pub(super) own_seq: Option<u64>,
    pub(super) equivocations: u64,
    pub(super) evidence: VecDeque<Equivocation>,
    /// When held events arrived and were ordered here (the explorer).
    pub(super) timeline: super::timeline::Timeline,
    pub(super) ordered_window: VecDeque<(Instant, u64)>,
    /// Restarted with a history and still catching up (see `may_create`).
    pub(super) resuming: bool,
    /// Rebuilding from the ledger: decided rounds rewrite their records
    /// (idempotent by position) but take no snapshot and delete nothing.
    pub(super) replaying: bool,
    /// Events received since the last pull completed.
    pub(super) received_since_pull: usize,
    /// Events the last completed pull brought (0 before any).
    pub(super) last_pull_size: usize,
    /// This node's latest checkpoints, oldest first.
    pub(super) checkpoints: VecDeque<Checkpoint>,
    /// Round of a state installed by state sync and not verified yet.
    pub(super) installed: Option<u64>,
    /// Something new arrived (a push, a completed pull) since this node
    /// last signed: it should answer with an event...
    pub(super) react_pending: bool,
    /// ...linking this newest event of another creator.
    pub(super) react_to: Option<EventId>,
    /// When the next event may be signed (`min_event_spacing` after the
    /// last), if one waits for it: see [`Machine::poll_timeout`].
    pub(super) create_at: Option<Instant>,
    /// Slashing protection (see `crate::signing_record`).
    pub(super) signing: Signing,
}

/// Where the machine stands with its signing record.
#[derive(Debug)]
pub enum Signing {
    /// No record was given (tests that drive the machine bare).
    Unguarded,
    /// Every event is checked against, and recorded in, the record.
    Guarded(Guard),
    /// The record is lost: nothing is signed until peers holding more than a
    /// third of the stake answered a pull (their ids so far).
    AwaitingPeers(HashSet<[u8; 32]>),
}

impl Machine {
    /// The next thing for the driver to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub(super) fn persist(&mut self, write: Write, own: Option<OwnEvent>) {
        if matches!(write, Write::Events { .. }) {
            self.records.accepted(write.size_hint());
        }
        self.outputs.push_back(Output::Persist {
            write: Box::new(write),
            own,
        });
    }

    /// The driver stored this own event durably.
    pub fn on_durable(&mut self, id: &EventId) {
        self.undurable.remove(id);
    }

    /// Inserts events a peer pushed and answers news with an own event (see
    /// [`Machine::react`]).
    pub fn receive_push(&mut self, events: Vec<Event>, now: Now) -> ReceiveSummary {
        let (summary, arrived) = self.insert_received(events, now, true);
        if let Some(newest) = arrived {
            self.react_pending = true;
            self.react_to = Some(newest);
            self.react(now);
        }
        summary
    }

    /// Inserts events from a peer, in the order given.
    pub fn receive(&mut self, events: Vec<Event>, now: Now) -> ReceiveSummary {
        self.insert_received(events, now, false).0
    }

    /// [`Machine::receive`], also returning the newest event of another
    /// creator it inserted (what a push is answered with).
    fn insert_received(
        &mut self,
        events: Vec<Event>,
        now: Now,
        pushed: bool,
    ) -> (ReceiveSummary, Option<EventId>) {
        let mut arrived = None;
        self.received_since_pull += events.len();
        let mut summary = ReceiveSummary::default();
        let mut accepted: Vec<Event> = Vec::new();
        for event in events {
            let id = event.id();
            match self.hg.insert(event.clone()) {
                Ok(InsertOutcome::Inserted(inserted)) => {
                    tracing::trace!(
                        creator = %hex(&event.creator().0[..4]),
                        seq = event.seq(),
                        round = inserted.round,
                        witness = inserted.witness,
                        "event inserted"
                    );
                    summary.inserted += 1 + inserted.unblocked.len();
                    if event.creator().0 != self.identity.id() {
                        arrived = Some(id);
                    }
                    self.accept(&event, &mut accepted);
                    for (dropped, reject) in inserted.dropped {
                        self.metrics.reject_event(reject_label(&reject));
                        self.records.forget(dropped);
                        self.timeline.forget(&[dropped]);
                        summary.dropped.push((dropped, reject));
                    }
                }
                Ok(InsertOutcome::Buffered { evicted }) => {
                    // Waiting events pushed out of the bounded buffer will
                    // not be inserted: delete them from disk too.
                    let kept = !evicted.contains(&id);
                    for gone in evicted {
                        self.records.forget(gone);
                        self.timeline.forget(&[gone]);
                    }
                    if kept {
                        summary.waiting += 1;
                        self.accept(&event, &mut accepted);
                    }
                }
                Ok(InsertOutcome::Parked) => {
                    summary.waiting += 1;
                    self.accept(&event, &mut accepted);
                }
                Ok(InsertOutcome::Duplicate) => summary.duplicates += 1,
                Err(reject) => {
                    tracing::debug!(event = %hex(&id.0), %reject, "event rejected");
                    self.metrics.reject_event(reject_label(&reject));
                    summary.rejected.push((id, reject));
                }
            }
        }
        if !accepted.is_empty() {
            for event in &accepted {
                self.timeline
                    .received(event.id(), now.unix_ns, now.instant, pushed);
            }
            self.metrics.events_received.inc_by(accepted.len() as u64);
            let events = accepted.iter().map(|e| (e.id().0, e.encode())).collect();
            self.persist(
                Write::Events {
                    events,
                    own_seq: None,
                    mempool_taken: Vec::new(),
                },
                None,
            );
        }
        self.metrics
            .events_duplicate
            .inc_by(summary.duplicates as u64);
        self.collect_evidence();
        self.drive_consensus(now, true);
        (summary, arrived)
    }

    fn accept(&mut self, event: &Event, accepted: &mut Vec<Event>) {
        self.track(event);
        self.records.remember(event.id());
        accepted.push(event.clone());
    }

    pub(super) fn track(&mut self, event: &Event) {
        if !event.transactions().is_empty() {
            self.unordered_with_txs.insert(event.id());
        }
    }

    fn collect_evidence(&mut self) {
        for evidence in self.hg.take_equivocations() {
            // Consensus may report one pair twice (an event compared while
            // it waited for parents, then again once inserted), and one
            // pair is enough to slash a creator: a forker's endless cheap
            // forks must not push other creators' proofs out, nor count
            // again after they were pushed out themselves.
            let pair = evidence.pair();
            let creator = evidence.first.creator();
            let mut of_creator = 0;
            let known = self.evidence.iter().any(|e| {
                of_creator += usize::from(e.first.creator() == creator);
                e.pair() == pair
            });
            if known || of_creator >= MAX_EVIDENCE_PER_CREATOR {
                continue;
            }
            tracing::warn!(creator = %hex(&creator.0), "equivocation detected");
            self.metrics.equivocations.inc();
            self.equivocations += 1;
            if self.evidence.len() >= MAX_EVIDENCE {
                self.evidence.pop_front();
            }
            // The proof is the two signed headers: the transactions (up to
            // a megabyte an event) are not kept.
            self.evidence.push_back(Equivocation {
                first: headers_only(&evidence.first),
                second: headers_only(&evidence.second),
            });
        }
    }

    /// The events a peer with these tips (and this many ordered events) is
    /// missing, parents first, at most `max_events`. For each parent its
    /// waiting events lack (`missing`, with the birth round they describe)
    /// that was born in a round this node pruned: the event from the
    /// ledger if it is still there, else the peer is behind (nobody keeps
    /// it any more; only a state sync helps it).
    ///
    /// `in_flight`: own events and events that came in their creators'
    /// pushes less than this long ago (and their descendants) are left out
    /// while the peer waits for no parent: they are on their way to it in
    /// those same pushes, and sending them again doubled the traffic on a
    /// wide-area network. A later pull brings any the peer still lacks.
    pub fn sync_answer(
        &mut self,
        tips: &[EventId],
        ordered: u64,
        missing: &[(EventId, u64)],
        max_events: usize,
        in_flight: Option<Duration>,
        now: Now,
    ) -> SyncAnswer {
        let pruned = self.hg.stats().pruned_through_round;
        let mut ledger = super::catch_up::LedgerReads::default();
        for (id, birth) in missing.iter().take(crate::net::wire::MAX_MISSING) {
            if *birth > pruned || self.undurable.contains(id) {
                continue;
            }
            ledger.missing.push(*id);
        }
        ledger.catch_up = self.catch_up(ordered, max_events);
        if ledger.catch_up.is_some() {
            ledger.held = self.held_tips(tips);
        }
        let mut events = self.hg.events_unknown_to(tips);
        if !self.undurable.is_empty() {
            events.retain(|e| !self.undurable.contains(&e.id()));
        }
        if let Some(window) = in_flight.filter(|_| missing.is_empty()) {
            self.leave_out_in_flight(&mut events, window, now);
        }
        events.truncate(max_events);
        SyncAnswer { ledger, events }
    }

    /// Drops from `events` (parents first) those still in flight in
    /// pushes (see [`Machine::sync_answer`]), and every event with a
    /// dropped parent, so the answer never carries an event without its
    /// parents. Monotonic time: a wall clock stepped back must not make
    /// old events look fresh.
    fn leave_out_in_flight(&self, events: &mut Vec<Event>, window: Duration, now: Now) {
        let mut left_out: HashSet<EventId> = HashSet::new();
        events.retain(|event| {
            let fresh = self.timeline.in_flight(&event.id(), now.instant, window);
            let orphan = [event.self_parent(), event.other_parent()]
                .into_iter()
                .flatten()
                .any(|parent| left_out.contains(&parent));
            if fresh || orphan {
                left_out.insert(event.id());
            }
            !(fresh || orphan)
        });
    }

    /// [`Machine::sync_answer`] with its ledger reads done at once: the
    /// whole answer and whether the peer is behind this node's horizon
    /// (for drivers without a separate reader, such as tests).
    pub fn sync_answer_now(
        &mut self,
        tips: &[EventId],
        ordered: u64,
        missing: &[(EventId, u64)],
        max_events: usize,
    ) -> (Vec<Event>, bool) {
        let answer = self.sync_answer(tips, ordered, missing, max_events, None, Now::system());
        super::catch_up::complete(self.ledger.as_ref(), answer, max_events)
    }

    pub fn tips(&self) -> Vec<EventId> {
        self.hg.tips()
    }

    /// Resumes signing from the signing record's entry for this network
    /// (`None`: there is no record). Call once, after recovery, before the
    /// machine signs anything; see `crate::signing_record`.
    pub fn resume_signing(&mut self, entry: Option<Entry>) {
        let me = CreatorId(self.identity.id());
        let ledger_head = self.hg.chain_head(&me).map(Head::from);
        match signing_record::resume(entry, ledger_head) {
            Resume::Lost => {
                tracing::warn!(
                    "no signing record: signing nothing until peers holding more than a third of \
                     the stake have answered, then resuming past what they hold of this chain"
                );
                self.signing = Signing::AwaitingPeers(HashSet::new());
            }
            resume => self.apply_resume(resume, entry.unwrap_or_default(), ledger_head),
        }
    }

    fn apply_resume(&mut self, resume: Resume, entry: Entry, ledger_head: Option<Head>) {
        let me = CreatorId(self.identity.id());
        let head = match resume {
            Resume::Fresh | Resume::Lost => None,
            Resume::After(h) => Some(h),
            // The next event gets `seq`; its self-parent is the newest own
            // event this node holds (followed: a self-parent may have any
            // lower sequence number), or none it could hold.
            Resume::Jump { seq, birth_round } => Some(match ledger_head {
                Some(h) => Head { seq: seq - 1, ..h },
                None => Head {
                    id: [0; 32],
                    seq: seq - 1,
                    birth_round: birth_round.max(1),
                    created_at_ns: 0,
                },
            }),
        };
        if let Some(h) = head {
            self.hg.resume_chain(&me, h.into());
        }
        tracing::info!(?resume, "signing resumes from the signing record");
        self.signing = Signing::Guarded(Guard::new(resume, entry));
    }

    /// The guard refused the next sequence number: this key may have used
    /// every one through `floor` (an event signed but never placed). The
    /// chain goes on after them, with the newest held own event as
    /// self-parent, so it cannot get stuck on a number it may not sign.
    fn continue_after(&mut self, floor: u64) {
        let me = CreatorId(self.identity.id());
        let head = self.hg.chain_head(&me);
        tracing::warn!(
            floor,
            head = head.map(|h| h.seq),
            "sequence numbers up to the floor may have been signed; continuing after them"
        );
        let id = head.map_or(EventId([0; 32]), |h| h.id);
        self.hg.resume_chain(
            &me,
            dagger_consensus::ChainHead {
                id,
                seq: floor,
                birth_round: head.map_or(1, |h| h.birth_round),
                created_at_ns: head.map_or(0, |h| h.created_at_ns),
            },
        );
    }

    /// The record entry after a clean stop: exactly the last own event.
    pub fn exact_record(&self) -> Option<Entry> {
        let Signing::Guarded(guard) = &self.signing else {
            return None;
        };
        let head = self.hg.chain_head(&CreatorId(self.identity.id()))?;
        Some(guard.exact(head.into()))
    }

    /// With the record lost: once peers holding more than a third of the
    /// stake answered, resume past the newest own event they hold.
    fn heard_from(&mut self, peer: [u8; 32]) {
        let Signing::AwaitingPeers(heard) = &mut self.signing else {
            return;
        };
        heard.insert(peer);
        let roster = self.hg.roster_at(self.hg.stats().last_decided_round + 1);
        let me = self.identity.id();
        let stake: u64 = heard
            .iter()
            .filter(|id| **id != me)
            .map(|id| roster.stake(&CreatorId(*id)))
            .sum();
        if !dagger_consensus::is_supermajority(stake.saturating_mul(2), roster.total()) {
            return;
        }
        let known = self.hg.chain_head(&CreatorId(me));
        let resume = Resume::Jump {
            seq: known.map_or(0, |h| h.seq) + signing_record::LOST_RECORD_JUMP,
            birth_round: known.map_or(0, |h| h.birth_round),
        };
        tracing::warn!(
            newest_known = known.map(|h| h.seq),
            ?resume,
            "peers holding more than a third of the stake answered; resuming past this chain's \
             newest event they hold"
        );
        self.apply_resume(resume, Entry::default(), known.map(Head::from));
    }

    /// After pulling from `peer`: create an event whose other-parent is the
    /// peer's latest (gossip about gossip), if there is reason to.
    pub fn after_sync(&mut self, peer: [u8; 32], now: Now) {
        self.heard_from(peer);
        if let Some(latest) = self.hg.latest_of(&CreatorId(peer)) {
            self.react_to = Some(latest);
        }
        self.react_pending = true;
        self.last_pull_size = std::mem::take(&mut self.received_since_pull);
        self.react(now);
    }

    /// Gossip-driven creation: news from another creator (a push or a
    /// pull) is answered with an own event that links it, as soon as there
    /// is reason to (see `should_create_event`) and at most once per
    /// `min_event_spacing`, so a burst of arrivals costs one event. Rounds
    /// advance at the speed of the network, not of a timer.
    fn react(&mut self, now: Now) {
        if !self.react_pending
            || !self.may_create(self.last_pull_size)
            || !self.should_create_event(now)
        {
            return;
        }
        let due = self.last_own_event + self.config.min_event_spacing;
        if now.instant < due {
            self.create_at = Some(due);
            return;
        }
        self.create_at = None;
        self.react_pending = false;
        let newest = self.react_to.take();
        let me = CreatorId(self.identity.id());
        let other_parent = self.hg.best_other_parent(&me, newest);
        // An event linking what the last own event already links, with no
        // transaction to carry, tells nobody anything: its round and
        // ancestry are its self-parent's. Making it anyway turned a stall
        // (rounds waiting for events still in transit) into a storm of
        // empty events, hundreds a second per node, that kept the stall
        // going on a loaded host.
        if other_parent.is_some() && !self.mempool.has_pending() {
            let last_links = self
                .hg
                .chain_head(&me)
                .and_then(|head| self.hg.event(&head.id))
                .and_then(|event| event.other_parent());
            if last_links == other_parent {
                return;
            }
        }
        self.create_event(other_parent, now);
    }

    /// When the driver should call [`Machine::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.create_at
    }

    /// The deadline from [`Machine::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.create_at.is_some_and(|at| at <= now.instant) {
            self.create_at = None;
            self.react(now);
        }
    }

    /// Events normally follow pulls, with the peer's latest event as
    /// other-parent: only cross-links advance rounds. This is the fallback
    /// when no pull succeeds for a while (a roster of one, or every peer
    /// unreachable).
    pub fn heartbeat(&mut self, now: Now) {
        self.react(now);
        if now.instant.saturating_duration_since(self.last_own_event)
            >= self.config.idle_event_interval * 4
            && self.may_create(self.last_pull_size)
        {
            self.create_event(None, now);
        }
    }

    /// Queues a transaction; the driver answers `id` once an own event
    /// carrying it is durable.
    pub fn submit(&mut self, tx: Vec<u8>, id: SubmitId, now: Now) -> Result<(), SubmitError> {
        self.mempool
            .admit(tx, id, now.instant, &self.config.consensus.limits)
    }

    /// Queues a report of this node's own components, in their own lane
    /// (taken before client transactions, outside their limits).
    pub fn report(&mut self, tx: Vec<u8>, id: SubmitId, now: Now) -> Result<(), SubmitError> {
        self.mempool
            .admit_own(tx, id, now.instant, &self.config.consensus.limits)
    }

    /// Transactions were submitted: sign them into an event as soon as the
    /// spacing allows, rather than waiting for news from a peer (an idle
    /// cluster would otherwise sit on them until its next pull).
    pub fn submitted(&mut self, now: Now) {
        if self.mempool.has_pending() && self.create_at.is_none() {
            self.react_pending = true;
            self.react(now);
        }
    }

    /// Whether transactions wait for an event or for consensus.
    pub fn has_work(&self) -> bool {
        self.mempool.has_pending()
            || self.mempool.has_forwards()
            || !self.unordered_with_txs.is_empty()
    }

    /// An envelope `peer` sealed, to carry in an own event: checked as the
    /// order will check it (and against this node's clock and limits, the
    /// cheap checks first), carried once. A peer sends only its own.
    pub fn receive_forward(
        &mut self,
        peer: [u8; 32],
        bytes: Vec<u8>,
        now: Now,
    ) -> Result<(), ForwardError> {
        if bytes.len() > max_sealed(&self.config.consensus.limits) {
            return Err(ForwardError::TooLarge(bytes.len()));
        }
        let unverified = Envelope::parse(&bytes)?;
        let envelope = &unverified.envelope;
        if envelope.origin != peer {
            return Err(ForwardError::NotFromSender);
        }
        if !self.is_member_now(&envelope.origin) {
            return Err(ForwardError::NotAMember);
        }
        if envelope.expires_ns < now.unix_ns {
            return Err(ForwardError::Expired);
        }
        if envelope.expires_ns - now.unix_ns > MAX_FORWARD_WINDOW_NS {
            return Err(ForwardError::TooFarAhead);
        }
        if !self.mempool.may_carry(envelope, bytes.len(), now.unix_ns)? {
            return Ok(());
        }
        let envelope = unverified.verify(&self.config.consensus.network_id)?;
        self.mempool
            .carry(&envelope, bytes, now.instant, now.unix_ns);
        self.metrics.forward_envelopes("carried");
        self.submitted(now);
        Ok(())
    }

    /// Whether `key` is in the roster of the newest round this node knows.
    pub(super) fn is_member_now(&self, key: &[u8; 32]) -> bool {
        let round = self.hg.stats().last_round_created.max(1);
        self.hg.roster_at(round).contains(&CreatorId(*key))
    }

    pub fn evidence(&self) -> Vec<Equivocation> {
        self.evidence.iter().cloned().collect()
    }

    /// A held or stored event, with its consensus facts when held. Own
    /// events not yet durable are not shown.
    /// An event held in memory, with what consensus says of it. (Older
    /// ones are read from the ledger by the caller, off the actor.)
    pub fn event(&self, id: &EventId) -> EventLookup {
        if self.undurable.contains(id) {
            return EventLookup::NotYet;
        }
        match self.hg.event(id) {
            Some(e) => EventLookup::Held(e, self.hg.event_info(id)),
            None => EventLookup::AskLedger,
        }
    }

    pub fn status(&self) -> CoreStatus {
        let stats = self.hg.stats();
        let missing = self.hg.missing_parents();
        CoreStatus {
            node_id: crate::identity::display_id(&self.identity.id()),
            last_round_created: stats.last_round_created,
            last_decided_round: stats.last_decided_round,
            ordered_events: stats.ordered_count,
            ordered_txs: self.records.next_tx_position,
            held_events: stats.held_events,
            // Filled in by whoever asks for it (a ledger read, kept off
            // the actor).
            stored_events: 0,
            waiting_events: stats.buffered_events + stats.parked_events,
            pending_txs: self.mempool.pending_len(),
            forwarded_txs: self.forwarded_txs,
            running_hash: hex(&stats.running_hash),
            own_seq: self.own_seq,
            equivocations: self.equivocations,
            unverified_install: self.installed,
            oldest_missing_parent: missing.first().map(|&(_, b)| b),
            missing_parents: missing.iter().take(4).map(|(id, _)| hex(&id.0)).collect(),
        }
    }

    /// The parents waiting events lack, oldest first.
    pub fn missing_parents(&self) -> Vec<(EventId, u64)> {
        self.hg.missing_parents()
    }

    /// The roster in force for the next round to decide.
    pub fn roster(&self) -> Vec<([u8; 32], u64)> {
        let next = self.hg.stats().last_decided_round + 1;
        self.hg
            .roster_at(next)
            .members()
            .map(|(c, stake)| (c.0, *stake))
            .collect()
    }

    /// Whether a (re)started node may sign. Its last event before the
    /// crash may never have reached anyone; while this node is behind, an
    /// event it signs would be born in rounds its peers already find
    /// ancient, linking that lost event. So it waits until either pulls
    /// bring few events and its tip is recent — measured against the
    /// newest round it has seen from anyone, not its own possibly stale
    /// decisions — or its tip is pruned: then the next event is born so
    /// long after it that it does not link it (see the consensus crate,
    /// "Birth rounds").
    fn may_create(&mut self, pulled: usize) -> bool {
        if matches!(self.signing, Signing::AwaitingPeers(_)) {
            return false;
        }
        if !self.resuming {
            return true;
        }
        let me = CreatorId(self.identity.id());
        let Some(head) = self.hg.chain_head(&me) else {
            // Nothing of this node is known here: either it never signed, or
            // it lost its ledger and its peers hold its chain. Pulls that
            // bring few events mean it has seen what they hold.
            if pulled <= RESUME_QUIET_EVENTS {
                self.resuming = false;
            }
            return !self.resuming;
        };
        let stats = self.hg.stats();
        let newest = stats.last_decided_round.max(stats.last_round_created);
        let tip_pruned = self.hg.event_info(&head.id).is_none();
        let tip_recent = head.birth_round + dagger_consensus::ANCIENT_HORIZON / 2 > newest;
        if tip_pruned || (tip_recent && pulled <= RESUME_QUIET_EVENTS) {
            tracing::info!(
                tip_pruned,
                pulled,
                "caught up after a restart; creating events again"
            );
            self.resuming = false;
        }
        !self.resuming
    }

    fn should_create_event(&self, now: Now) -> bool {
        self.has_work()
            || now.instant.saturating_duration_since(self.last_own_event)
                >= self.config.idle_event_interval
    }

    /// Signs a new own event with the pending transactions that fit and
    /// hands it out for durable storage (it leaves the node only then).
    fn create_event(&mut self, other_parent: Option<EventId>, now: Now) {
        let limits = self.config.consensus.limits.clone();
        let batch = self.mempool.take_batch(&limits, now.unix_ns);
        let (mut record, mut used_through) = (None, None);
        let signing = &mut self.signing;
        let created = self.hg.create_event_checked(
            self.identity.signing_key(),
            batch.txs.clone(),
            now.unix_ns,
            other_parent,
            |event| match signing {
                Signing::Unguarded => Ok(()),
                Signing::AwaitingPeers(_) => Err("the signing record is lost".to_string()),
                Signing::Guarded(guard) => match guard.permit(event.seq, event.birth_round) {
                    Ok(entry) => {
                        record = entry;
                        Ok(())
                    }
                    Err(refused) => {
                        if let signing_record::Refused::Sequence { floor, .. } = refused {
                            used_through = Some(floor);
                        }
                        Err(refused.to_string())
                    }
                },
            },
        );
        if let Some(entry) = record {
            // Durable before the event can leave the process (and stored even
            // if the event did not come to be: the guard counts on it).
            self.outputs.push_back(Output::Record(entry));
        }
        if let Some(floor) = used_through {
            self.continue_after(floor);
        }
        let event = match created {
            Ok(event) => event,
            Err(err) => {
                self.mempool.put_back(batch);
                if matches!(
                    err,
                    CreateError::WaitForConsensus
                        | CreateError::OwnHeadMissing
                        | CreateError::ParentsTooOld
                        | CreateError::UnsoundOtherParent
                        | CreateError::Refused(_)
                ) {
                    tracing::debug!(reason = %err, "event creation waits");
                } else if let CreateError::Rejected(Reject::NotInRoster { round }) = err {
                    // An admitted operator observes until its admission takes
                    // effect at a round boundary; a removed one from then on.
                    tracing::debug!(round, "not a roster member for this round; observing");
                } else {
                    tracing::warn!(error = %err, "cannot create an event");
                }
                return;
            }
        };
        let id = event.id();
        self.own_seq = Some(event.seq());
        self.last_own_event = now.instant;
        self.timeline.received(id, now.unix_ns, now.instant, true);
        self.track(&event);
        self.metrics.events_created.inc();
        tracing::trace!(
            seq = event.seq(),
            txs = event.transactions().len(),
            "event created"
        );
        let submitters = batch.submitters();
        self.mempool.carried(id, batch);
        self.undurable.insert(id);
        self.persist(
            Write::Events {
                events: vec![(id.0, event.encode())],
                own_seq: Some(event.seq()),
                mempool_taken: Vec::new(),
            },
            Some(OwnEvent { event, submitters }),
        );
        self.drive_consensus(now, true);
    }

    /// Polls consensus until nothing more is decided, recording each round.
    pub(super) fn drive_consensus(&mut self, now: Now, live: bool) {
        while let Some(decided) = self.hg.poll() {
            // The observer's roster change for this round is scheduled before
            // the round is recorded: a snapshot taken in `record` must
            // already contain it (a decided round is never polled again).
            let roster = self.hg.roster_at(decided.round_received);
            let deliveries =
                self.delivered
                    .deliver(&decided, &self.config.consensus.network_id, |key| {
                        roster.contains(&CreatorId(*key))
                    });
            if let Some(roster) = self.observer.on_decided(&decided, &deliveries) {
                match self
                    .hg
                    .schedule_roster_change(decided.round_received, roster)
                {
                    Ok(effective) => tracing::info!(
                        ordered_in = decided.round_received,
                        effective,
                        "roster change scheduled"
                    ),
                    Err(err) => tracing::error!(error = %err, "roster change refused"),
                }
            }
            self.record(&decided, &deliveries, now, live);
            drop(deliveries);
            self.outputs.push_back(Output::Decided(Arc::new(decided)));
        }
        let stats = self.hg.stats();
        self.metrics
            .last_round_created
            .set(stats.last_round_created as i64);
        self.metrics
            .last_decided_round
            .set(stats.last_decided_round as i64);
        self.metrics.held_events.set(stats.held_events as i64);
    }

    /// Throughput over the last five seconds (metrics).
    pub(super) fn count_ordered(&mut self, now: Instant, ordered_txs: u64) {
        self.ordered_window.push_back((now, ordered_txs));
        while self
            .ordered_window
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > Duration::from_secs(5))
        {
            self.ordered_window.pop_front();
        }
        let recent: u64 = self.ordered_window.iter().map(|(_, n)| n).sum();
        self.metrics.ordered_tps.set(recent as f64 / 5.0);
    }

    pub(super) fn own_latest_seq(&self) -> Option<u64> {
        self.hg
            .chain_head(&CreatorId(self.identity.id()))
            .map(|head| head.seq)
    }
}

/// `event` without its transactions: its id and signature still check.
fn headers_only(event: &Event) -> Event {
    Event::assemble(event.header().clone(), Vec::new(), *event.signature())
}
