use dagger_consensus::{Decided, Ordered, UnsignedEvent};
use ed25519_dalek::SigningKey;

use super::*;

struct World {
    keys: Vec<SigningKey>,
    operators: Vec<Pubkey>,
    controller: Controller,
    round: u64,
    index: u64,
    time_ns: u64,
}

fn capacity(region: u16) -> Capacity {
    Capacity {
        vcpus: 8,
        memory_mib: 16_384,
        disk_gib: 200,
        region,
    }
}

fn spec(vcpus: u16, region: u16) -> VmSpec {
    VmSpec {
        vcpus,
        memory_mib: 1_024,
        disk_gib: 10,
        region,
        image_id: [1; 32],
        ssh_key: [42; 32],
    }
}

impl World {
    fn new(n: usize) -> World {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let operators: Vec<Pubkey> = (0..n).map(|_| Pubkey::new_unique()).collect();
        let genesis: Vec<GenesisOperator> = keys
            .iter()
            .zip(&operators)
            .enumerate()
            .map(|(i, (k, op))| GenesisOperator {
                operator: *op,
                nonce: i as u64,
                node_key: Pubkey::new_from_array(k.verifying_key().to_bytes()),
                stake: 10,
                capacity: capacity(if i % 2 == 0 { 1 } else { 2 }),
                address: format!("127.0.0.1:{}", 7000 + i),
                price_floor: PriceFloor::default(),
            })
            .collect();
        let mut world = World {
            controller: Controller::new(&genesis),
            keys,
            operators,
            round: 0,
            index: 0,
            time_ns: 1_000_000_000_000,
        };
        // Every node boots any image (as the simulated backend announces).
        let any = NodeTx::ImagesServed {
            any: true,
            images: Vec::new(),
        };
        let announcements: Vec<(usize, NodeTx)> = (0..n).map(|i| (i, any.clone())).collect();
        world.round(&announcements);
        world
    }

    fn node(&self, i: usize) -> Pubkey {
        Pubkey::new_from_array(self.keys[i].verifying_key().to_bytes())
    }

    /// One decided round in which node `i` reported `txs`.
    fn round(&mut self, reports: &[(usize, NodeTx)]) -> Option<Roster> {
        self.round += 1;
        let mut events = Vec::new();
        for (i, tx) in reports {
            self.time_ns += 1_000_000;
            let event = UnsignedEvent {
                seq: self.index,
                birth_round: self.round,
                self_parent: None,
                other_parent: None,
                created_at_ns: self.time_ns,
                txs: vec![tx.encode()],
            }
            .sign(&self.keys[*i], &[0; 32]);
            events.push(Ordered {
                event,
                round_received: self.round,
                consensus_time_ns: self.time_ns,
                order_index: self.index,
                running_hash: [self.round as u8; 32],
            });
            self.index += 1;
        }
        let decided = Decided {
            round_received: self.round,
            judges: Vec::new(),
            events,
            running_hash: [self.round as u8; 32],
            pruned: Vec::new(),
            discarded: Vec::new(),
        };
        let deliveries =
            crate::core::forward::Delivered::default().deliver(&decided, &[0; 32], |_| true);
        self.controller.apply(&decided, &deliveries)
    }

    fn seen(&self, request: Pubkey, spec: VmSpec) -> NodeTx {
        self.seen_at(request, spec, 1)
    }

    fn seen_at(&self, request: Pubkey, spec: VmSpec, price_per_second: u64) -> NodeTx {
        NodeTx::RequestSeen {
            request,
            nonce: 42,
            spec,
            price_per_second,
            duration: 60,
            deadline: (self.time_ns / 1_000_000_000) as i64 + 600,
        }
    }

    fn assignee(&self, request: &Pubkey) -> Option<usize> {
        let operator = self.controller.state.requests.get(request)?.assigned?;
        self.operators.iter().position(|o| *o == operator)
    }
}

#[test]
fn a_request_counts_only_with_more_than_a_third_of_stake() {
    let mut w = World::new(4);
    let request = Pubkey::new_unique();
    let tx = w.seen(request, spec(2, 0));
    w.round(&[(0, tx.clone())]);
    assert!(
        w.controller.state.requests.is_empty(),
        "one of four is not enough"
    );
    // The same reporter twice still counts once.
    w.round(&[(0, tx.clone())]);
    assert!(w.controller.state.requests.is_empty());
    w.round(&[(1, tx)]);
    assert!(
        w.assignee(&request).is_some(),
        "two of four (1/2) is more than 1/3"
    );
}

#[test]
fn a_lying_minority_cannot_invent_requests() {
    let mut w = World::new(4);
    let fake = Pubkey::new_unique();
    let tx = w.seen(fake, spec(1, 0));
    // One node of four repeating itself never reaches more than 1/3.
    for _ in 0..10 {
        w.round(&[(0, tx.clone())]);
    }
    assert!(w.controller.state.requests.is_empty());
    // Different contents do not add up either.
    let other = w.seen(fake, spec(2, 0));
    w.round(&[(1, other)]);
    assert!(w.controller.state.requests.is_empty());
}

#[test]
fn assignment_respects_capacity_region_and_load() {
    let mut w = World::new(4);
    // Region 2 holds operators 1 and 3.
    let mut assigned = Vec::new();
    for _ in 0..4 {
        let request = Pubkey::new_unique();
        let tx = w.seen(request, spec(4, 2));
        w.round(&[(0, tx.clone()), (1, tx)]);
        assigned.push(w.assignee(&request));
    }
    // 8 vCPUs each: two 4-vCPU VMs fit per operator, least loaded first.
    let mut counts = [0; 4];
    for a in assigned.iter().flatten() {
        counts[*a] += 1;
    }
    assert_eq!(counts, [0, 2, 0, 2], "{assigned:?}");
    // A fifth does not fit anywhere in region 2: it waits unassigned.
    let request = Pubkey::new_unique();
    let tx = w.seen(request, spec(4, 2));
    w.round(&[(0, tx.clone()), (1, tx)]);
    assert_eq!(w.assignee(&request), None);
    assert!(w.controller.state.requests.contains_key(&request));
    // When a lease goes away, the waiting one is assigned.
    let gone = NodeTx::RequestGone {
        request: *w
            .controller
            .state
            .requests
            .keys()
            .find(|k| **k != request && w.assignee(k).is_some())
            .unwrap(),
    };
    w.round(&[(0, gone.clone()), (2, gone)]);
    assert!(w.assignee(&request).is_some());
}

#[test]
fn only_the_assigned_node_reports_and_failures_reassign() {
    let mut w = World::new(4);
    let request = Pubkey::new_unique();
    let tx = w.seen(request, spec(1, 0));
    w.round(&[(0, tx.clone()), (1, tx)]);
    let first = w.assignee(&request).unwrap();
    let other = (first + 1) % 4;
    // Someone else's report is ignored.
    w.round(&[(
        other,
        NodeTx::ProvisionReport {
            request,
            endpoint: "ssh://root@elsewhere:1".into(),
        },
    )]);
    assert!(w.controller.duties(&w.node(first)).votes.is_empty());
    assert_eq!(w.controller.duties(&w.node(first)).provision.len(), 1);
    // The assignee fails: the request moves to another operator.
    w.round(&[(first, NodeTx::ProvisionFailed { request })]);
    let second = w.assignee(&request).unwrap();
    assert_ne!(second, first);
    assert!(w.controller.duties(&w.node(first)).leases.is_empty());
    // The new assignee's report makes every node vote for it.
    w.round(&[(
        second,
        NodeTx::ProvisionReport {
            request,
            endpoint: "ssh://root@10.0.0.2:22000".into(),
        },
    )]);
    for i in 0..4 {
        let votes = w.controller.duties(&w.node(i)).votes;
        assert_eq!(
            votes,
            vec![Vote::Provision {
                request,
                nonce: 42,
                operator: w.operators[second],
                endpoint_hash: *blake3::hash(b"ssh://root@10.0.0.2:22000").as_bytes()
            }]
        );
    }
    // Once the chain shows it active, nobody votes any more.
    let active = NodeTx::LeaseActive {
        request,
        operator: w.operators[second],
    };
    w.round(&[(0, active.clone()), (1, active)]);
    assert!(w.controller.duties(&w.node(0)).votes.is_empty());
    assert_eq!(w.controller.duties(&w.node(second)).leases, vec![request]);
    // A VM failure reported by its operator leads to a termination vote.
    w.round(&[(second, NodeTx::VmFailed { request })]);
    assert!(matches!(
        w.controller.duties(&w.node(0)).votes[..],
        [Vote::Terminate { .. }]
    ));
}

#[test]
fn membership_follows_the_chain() {
    let mut w = World::new(4);
    let newcomer = Pubkey::new_unique();
    let node_key = Pubkey::new_unique();
    let pending = NodeTx::OperatorSeen {
        operator: newcomer,
        nonce: 9,
        node_key,
        stake: 20,
        status: OperatorStatus::Pending,
        capacity: capacity(1),
        address: "127.0.0.1:7100".into(),
        price_floor: PriceFloor::default(),
    };
    assert!(w.round(&[(0, pending.clone()), (1, pending)]).is_none());
    assert!(
        matches!(w.controller.duties(&w.node(0)).votes[..], [Vote::Admit { operator, .. }] if operator == newcomer)
    );

    let active = NodeTx::OperatorSeen {
        operator: newcomer,
        nonce: 9,
        node_key,
        stake: 20,
        status: OperatorStatus::Active,
        capacity: capacity(1),
        address: "127.0.0.1:7100".into(),
        price_floor: PriceFloor::default(),
    };
    let roster = w
        .round(&[(2, active.clone()), (3, active)])
        .expect("roster grows");
    assert_eq!(roster.len(), 5);
    assert_eq!(roster.total(), 60);
    assert!(w
        .controller
        .duties(&w.node(0))
        .peers
        .iter()
        .any(|(k, _)| *k == node_key));

    // Operator 3 unstakes: it leaves the roster.
    let leaving = NodeTx::OperatorSeen {
        operator: w.operators[3],
        nonce: 3,
        node_key: w.node(3),
        stake: 10,
        status: OperatorStatus::Unbonding,
        capacity: capacity(2),
        address: "127.0.0.1:7003".into(),
        price_floor: PriceFloor::default(),
    };
    // Reports now need more than 1/3 of 60: two of the 10-stake nodes are not enough.
    assert!(w
        .round(&[(0, leaving.clone()), (1, leaving.clone())])
        .is_none());
    let roster = w.round(&[(2, leaving)]).expect("roster shrinks");
    assert_eq!(roster.len(), 4);
    assert!(!roster.contains(&CreatorId(w.node(3).to_bytes())));
    // An operator with a pending unstake gets no new leases.
    for _ in 0..12 {
        let request = Pubkey::new_unique();
        let tx = w.seen(request, spec(1, 0));
        w.round(&[(0, tx.clone()), (1, tx.clone()), (2, tx)]);
        let assigned = w.controller.state.requests[&request].assigned;
        assert!(assigned.is_some(), "the others have room");
        assert_ne!(assigned, Some(w.operators[3]));
    }
}

#[test]
fn unprovisioned_requests_expire_at_their_deadline() {
    let mut w = World::new(4);
    let request = Pubkey::new_unique();
    let mut tx = w.seen(request, spec(1, 0));
    if let NodeTx::RequestSeen { deadline, .. } = &mut tx {
        *deadline = (w.time_ns / 1_000_000_000) as i64;
    }
    w.round(&[(0, tx.clone()), (1, tx)]);
    assert!(w.controller.state.requests.contains_key(&request));
    w.time_ns += 2_000_000_000;
    w.round(&[(
        0,
        NodeTx::ProvisionFailed {
            request: Pubkey::new_unique(),
        },
    )]);
    assert!(!w.controller.state.requests.contains_key(&request));
}

#[test]
fn state_round_trips_and_replicas_agree() {
    let mut a = World::new(4);
    let mut b = World::new(4);
    b.operators = a.operators.clone();
    b.controller = a.controller.clone();
    for k in 0..20 {
        let request = Pubkey::new_unique();
        let tx = a.seen(request, spec(1 + (k % 3) as u16, 0));
        let reports = [(k % 4, tx.clone()), ((k + 1) % 4, tx)];
        a.round(&reports);
        b.round(&reports);
    }
    assert_eq!(a.controller.state, b.controller.state);
    let restored = Controller::decode(&a.controller.encode()).unwrap();
    assert_eq!(restored.state, a.controller.state);
    assert!(Controller::decode(&[1, 2, 3]).is_err());
}

#[test]
fn a_silent_assignee_is_passed_over_after_the_report_timeout() {
    let mut w = World::new(4);
    let request = Pubkey::new_unique();
    let tx = w.seen(request, spec(1, 0));
    w.round(&[(0, tx.clone()), (1, tx)]);
    let first = w.assignee(&request).unwrap();
    // Time passes in consensus (other nodes' unrelated reports), no report.
    w.time_ns += (REPORT_TIMEOUT_S as u64 - 1) * 1_000_000_000;
    w.round(&[(
        0,
        NodeTx::ProvisionFailed {
            request: Pubkey::new_unique(),
        },
    )]);
    assert_eq!(w.assignee(&request), Some(first), "not yet");
    w.time_ns += 2_000_000_000;
    w.round(&[(
        0,
        NodeTx::ProvisionFailed {
            request: Pubkey::new_unique(),
        },
    )]);
    let second = w.assignee(&request).unwrap();
    assert_ne!(second, first);
    assert!(w.controller.duties(&w.node(first)).provision.is_empty());
    assert_eq!(w.controller.duties(&w.node(second)).provision.len(), 1);
}

/// A request is only assigned to operators whose price floor its price
/// meets; one no operator accepts stays unassigned (the customer reclaims
/// it after its deadline).
#[test]
fn requests_go_only_to_operators_whose_price_floor_they_meet() {
    let mut w = World::new(4);
    // Operator 0 asks 5 lamports per vCPU-second, the others 50.
    for i in 0..4 {
        let floor = PriceFloor {
            per_vcpu: if i == 0 { 5 } else { 50 },
            per_memory_gib: 0,
            per_disk_gib: 0,
        };
        let tx = NodeTx::OperatorSeen {
            operator: w.operators[i],
            nonce: i as u64,
            node_key: w.node(i),
            stake: 10,
            status: OperatorStatus::Active,
            capacity: capacity(1),
            address: format!("127.0.0.1:{}", 7000 + i),
            price_floor: floor,
        };
        w.round(&[(0, tx.clone()), (1, tx)]);
    }
    // 2 vCPUs at 10 per second: only operator 0 accepts.
    let cheap = Pubkey::new_unique();
    let tx = w.seen_at(cheap, spec(2, 1), 10);
    w.round(&[(0, tx.clone()), (1, tx)]);
    assert_eq!(w.assignee(&cheap), Some(0));
    // 2 vCPUs at 9 per second: nobody.
    let too_cheap = Pubkey::new_unique();
    let tx = w.seen_at(too_cheap, spec(2, 1), 9);
    w.round(&[(0, tx.clone()), (1, tx)]);
    assert_eq!(w.assignee(&too_cheap), None);
    // 2 vCPUs at 100: everyone accepts; the least loaded gets it.
    let generous = Pubkey::new_unique();
    let tx = w.seen_at(generous, spec(2, 1), 100);
    w.round(&[(0, tx.clone()), (1, tx)]);
    assert!(matches!(w.assignee(&generous), Some(i) if i != 0));
}

/// A request cancelled and created again at the same address is a new
/// instance: the controller forgets the old one and votes with the new
/// nonce, so its votes can count on-chain.
#[test]
fn a_recreated_request_is_a_new_instance() {
    let mut w = World::new(4);
    let request = Pubkey::new_unique();
    let first = w.seen(request, spec(1, 0));
    w.round(&[(0, first.clone()), (1, first)]);
    let NodeTx::RequestSeen { spec: s, .. } = w.seen(request, spec(1, 0)) else {
        unreachable!()
    };
    let again = NodeTx::RequestSeen {
        request,
        nonce: 43,
        spec: s,
        price_per_second: 1,
        duration: 60,
        deadline: (w.time_ns / 1_000_000_000) as i64 + 600,
    };
    w.round(&[(0, again.clone()), (1, again)]);
    assert_eq!(w.controller.state.requests[&request].nonce, 43);
}

#[test]
fn requests_go_only_to_operators_that_boot_their_image() {
    let mut w = World::new(4);
    // Nodes 0..3 now announce real catalogs: only node 2 has image 9.
    for i in 0..4 {
        let images = if i == 2 {
            vec![[9; 32], [1; 32]]
        } else {
            vec![[1; 32]]
        };
        w.round(&[(i, NodeTx::ImagesServed { any: false, images })]);
    }
    let mut wanted = spec(1, 0);
    wanted.image_id = [9; 32];
    let request = Pubkey::new_unique();
    let tx = w.seen(request, wanted);
    w.round(&[(0, tx.clone()), (1, tx)]);
    assert_eq!(w.assignee(&request), Some(2));
    // An image nobody boots: the request stays open (and is reclaimable
    // after its deadline).
    let mut unknown = spec(1, 0);
    unknown.image_id = [5; 32];
    let orphan = Pubkey::new_unique();
    let tx = w.seen(orphan, unknown);
    w.round(&[(0, tx.clone()), (1, tx)]);
    assert_eq!(w.assignee(&orphan), None);
    // Announcements are only ever about the reporter itself, and bounded.
    w.round(&[(
        0,
        NodeTx::ImagesServed {
            any: false,
            images: vec![[0; 32]; txs::MAX_IMAGES + 1],
        },
    )]);
    assert_eq!(
        w.controller.duties(&w.node(0)).images_here,
        Some(ImagesServed {
            any: false,
            images: [[1; 32]].into_iter().collect()
        })
    );
    // Once node 3 announces image 5, the waiting request goes to it.
    w.round(&[(
        3,
        NodeTx::ImagesServed {
            any: false,
            images: vec![[5; 32]],
        },
    )]);
    assert_eq!(w.assignee(&orphan), Some(3));
}

#[test]
fn every_node_knows_where_a_provisioned_vm_is() {
    let mut w = World::new(4);
    let request = Pubkey::new_unique();
    let tx = w.seen(request, spec(1, 0));
    w.round(&[(0, tx.clone()), (1, tx)]);
    let assignee = w.assignee(&request).unwrap();
    assert!(w.controller.endpoints().is_empty());
    // An endpoint longer than allowed is ignored.
    w.round(&[(
        assignee,
        NodeTx::ProvisionReport {
            request,
            endpoint: "x".repeat(txs::MAX_ENDPOINT_LEN + 1),
        },
    )]);
    assert!(w.controller.endpoints().is_empty());
    w.round(&[(
        assignee,
        NodeTx::ProvisionReport {
            request,
            endpoint: "ssh://root@203.0.113.7:22001".into(),
        },
    )]);
    let endpoints = w.controller.endpoints();
    let lease = &endpoints[&request];
    assert_eq!(lease.endpoint, "ssh://root@203.0.113.7:22001");
    assert_eq!(
        lease.endpoint_hash,
        crate::core::hex(blake3::hash(b"ssh://root@203.0.113.7:22001").as_bytes())
    );
    assert_eq!(lease.node_key, w.node(assignee).to_string());
    assert!(!lease.active);
}

#[test]
fn image_names_make_a_catalog_weighted_by_stake_and_survive_snapshots() {
    let mut w = World::new(4);
    for i in 0..4 {
        let images = if i < 3 {
            vec![[1; 32], [2; 32]]
        } else {
            vec![[3; 32]]
        };
        w.round(&[(i, NodeTx::ImagesServed { any: false, images })]);
    }
    let named = |pairs: &[([u8; 32], &str)]| NodeTx::ImageNames {
        names: pairs.iter().map(|(id, n)| (*id, n.to_string())).collect(),
    };
    for i in 0..3 {
        w.round(&[(
            i,
            named(&[([1; 32], "debian (bookworm)"), ([2; 32], "dagger-default")]),
        )]);
    }
    // Node 3 calls its own image "debian" too: fewer operators stand
    // behind it.
    w.round(&[(3, named(&[([3; 32], "debian")]))]);
    let catalog = w.controller.catalog();
    assert_eq!(catalog.len(), 3);
    let first = catalog
        .iter()
        .find(|c| c.id == crate::core::hex(&[1; 32]))
        .unwrap();
    assert_eq!(first.operators, 3);
    assert_eq!(first.names, vec!["debian (bookworm)".to_string()]);
    assert!(
        first.stake
            > catalog
                .iter()
                .find(|c| c.id == crate::core::hex(&[3; 32]))
                .unwrap()
                .stake
    );
    assert_eq!(
        w.controller.duties(&w.node(3)).image_names_here,
        Some([([3; 32], "debian".to_string())].into_iter().collect())
    );

    // Hostile names (too long, a line break, too many) change nothing.
    let before = w.controller.catalog();
    for bad in [
        named(&[([3; 32], &"x".repeat(txs::MAX_IMAGE_NAME + 1))]),
        named(&[([3; 32], "debian\nroot")]),
        named(&[([3; 32], "")]),
        NodeTx::ImageNames {
            names: vec![([3; 32], "a".into()); txs::MAX_IMAGES + 1],
        },
    ] {
        w.round(&[(3, bad)]);
    }
    assert_eq!(w.controller.catalog(), before);
    // A name for an image the node does not boot names nothing.
    w.round(&[(3, named(&[([3; 32], "debian"), ([7; 32], "evil")]))]);
    assert!(w
        .controller
        .catalog()
        .iter()
        .all(|c| c.id != crate::core::hex(&[7; 32])));

    // Snapshots carry the names; a snapshot from before names existed
    // (the state alone) still loads.
    let restored = Controller::decode(&w.controller.encode()).unwrap();
    assert_eq!(restored.catalog(), w.controller.catalog());
    let mut old = Vec::new();
    w.controller.state.serialize(&mut old).unwrap();
    let legacy = Controller::decode(&old).unwrap();
    assert!(legacy.catalog().iter().all(|c| c.names.is_empty()));
}

#[test]
fn requests_of_a_warm_shape_go_to_a_node_with_a_ready_vm_among_equals() {
    // Whichever node the lottery picks for a cold request, a warm one of
    // another node wins the tie; its warm count is spent by the
    // assignment; load still comes first.
    let mut w = World::new(4);
    let shape = txs::WarmShape::of(&spec(1, 0));
    for warm_node in 0..4 {
        w.round(&[(
            warm_node,
            NodeTx::PoolsReady {
                ready: vec![(shape, 1)],
            },
        )]);
        let request = Pubkey::new_unique();
        let tx = w.seen(request, spec(1, 0));
        w.round(&[(0, tx.clone()), (1, tx)]);
        assert_eq!(w.assignee(&request), Some(warm_node));
        assert_eq!(
            w.controller.duties(&w.node(warm_node)).warm_here,
            Some(BTreeMap::new()),
            "the ready VM is spoken for"
        );
        let gone = NodeTx::RequestGone { request };
        w.round(&[(0, gone.clone()), (1, gone)]);
    }
    // Another shape is not warm.
    w.round(&[(
        2,
        NodeTx::PoolsReady {
            ready: vec![(shape, 3)],
        },
    )]);
    let mut other = spec(1, 0);
    other.memory_mib = 2_048;
    let mut picks = BTreeSet::new();
    for _ in 0..12 {
        let request = Pubkey::new_unique();
        let tx = w.seen(request, other);
        w.round(&[(0, tx.clone()), (1, tx)]);
        picks.insert(w.assignee(&request).unwrap());
        let gone = NodeTx::RequestGone { request };
        w.round(&[(0, gone.clone()), (1, gone)]);
    }
    assert!(picks.len() > 1, "cold requests still spread: {picks:?}");
    // Too many shapes: ignored; zero counts: nothing warm.
    let many: Vec<(txs::WarmShape, u16)> = (0..=txs::MAX_WARM_SHAPES as u32)
        .map(|i| {
            (
                txs::WarmShape {
                    memory_mib: i + 1,
                    ..shape
                },
                1,
            )
        })
        .collect();
    w.round(&[(3, NodeTx::PoolsReady { ready: many })]);
    assert_eq!(
        w.controller.duties(&w.node(3)).warm_here,
        Some(BTreeMap::new())
    );
    // Snapshots keep the counts.
    let restored = Controller::decode(&w.controller.encode()).unwrap();
    assert_eq!(
        restored.duties(&w.node(2)).warm_here,
        w.controller.duties(&w.node(2)).warm_here
    );
}
