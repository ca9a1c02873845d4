//! The async SDK against a real local Solana JSON-RPC chain (surfpool with the
//! program registered natively): every face's happy path and the errors a
//! user can run into.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use dagger_client::{
    errors::DaggerError, AttestOutcome, ClientError, OperatorFilter, OperatorStatus,
    ProgramFailure, RequestFilter, RequestStatus, Subject, TxOptions, UpdateOperatorArgs, Vote,
    WatchMethod, PROGRAM_ID,
};
use solana_sdk::{
    native_token::LAMPORTS_PER_SOL, pubkey::Pubkey, signature::Keypair, signer::Signer,
};

const PRICE: u64 = 1_000;
const DURATION: u64 = 3_600;

/// The runtime's line for a failed DAGGER instruction.
fn dagger_failed(logs: &[String]) -> bool {
    logs.iter()
        .any(|line| line.starts_with(&format!("Program {PROGRAM_ID} failed")))
}

#[tokio::test]
async fn a_customer_pays_waits_for_the_lease_tops_up_and_closes_it() {
    let net = Network::start(Settings::default()).await;
    let customer_wallet = funded(&net.chain, 10).await;
    let customer = net.client(customer_wallet.clone());
    let rpc = customer.rpc();
    let before = rpc.get_balance(&customer_wallet.pubkey()).await.unwrap();

    let created = customer
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .expect("create_request");
    assert_eq!(created.deposit, PRICE * DURATION);
    let request = customer.reader().request(&created.request).await.unwrap();
    assert_eq!(request.request_id, created.request_id);
    assert_eq!(request.customer, customer_wallet.pubkey());
    assert_eq!(request.status, RequestStatus::Open);

    // The operators provision it while the customer waits.
    let mut reports = Vec::new();
    let (lease, ()) = tokio::join!(
        customer.customer().wait_until_active(
            &created.request,
            Duration::from_secs(30),
            |progress| reports.push(progress)
        ),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            net.provision(&created.request).await;
        }
    );
    let lease = lease.expect("lease becomes active");
    assert_eq!(lease.request.status, RequestStatus::Active);
    assert_eq!(lease.request.assigned_operator, net.operators[0].account());
    assert_eq!(lease.method, WatchMethod::Websocket);
    assert!(!reports.is_empty(), "progress reported while open");
    assert!(reports
        .iter()
        .all(|r| r.status == RequestStatus::Open && r.seconds_to_deadline > 0));

    customer
        .customer()
        .top_up(&created.request, 600)
        .await
        .expect("top_up");
    let topped = customer.reader().request(&created.request).await.unwrap();
    assert_eq!(topped.duration, DURATION + 600);
    assert_eq!(topped.deposit, PRICE * (DURATION + 600));

    customer
        .customer()
        .close_lease(&created.request)
        .await
        .expect("close_lease");
    assert!(matches!(
        customer.reader().request(&created.request).await,
        Err(ClientError::NotFound {
            kind: "request",
            ..
        })
    ));
    // Everything but what the lease accrued and the fees came back.
    let after = rpc.get_balance(&customer_wallet.pubkey()).await.unwrap();
    let spent = before - after;
    assert!(spent < PRICE * 120, "spent {spent}");

    // Waiting on a lease that is gone says so.
    let error = customer
        .customer()
        .wait_until_active(&created.request, Duration::from_secs(5), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::NotFound {
                kind: "request",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("cancelled"), "{error}");
}

#[tokio::test]
async fn waiting_falls_back_to_polling_without_a_websocket() {
    let net = Network::start(Settings::default()).await;
    let wallet = funded(&net.chain, 10).await;
    // Nothing listens on this port any more.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = dagger_client::cluster::resolve(
        &net.chain.rpc_url(),
        Some(&format!("ws://127.0.0.1:{dead_port}")),
    )
    .unwrap();
    let customer = dagger_client::DaggerClient::new(cluster, wallet, options()).unwrap();
    let created = customer
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    let mut methods = Vec::new();
    let (lease, ()) = tokio::join!(
        customer.customer().wait_until_active(
            &created.request,
            Duration::from_secs(30),
            |progress| methods.push(progress.method)
        ),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            net.provision(&created.request).await;
        }
    );
    let lease = lease.expect("active");
    assert_eq!(lease.method, WatchMethod::Polling);
    assert!(!methods.is_empty());
    assert!(methods.iter().all(|m| *m == WatchMethod::Polling));
}

#[tokio::test]
async fn priority_fees_and_compute_limits_reach_the_transaction() {
    let net = Network::start(Settings::default()).await;
    let wallet = funded(&net.chain, 10).await;
    let customer = net.client(wallet.clone());
    let created = customer
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    let balance = || async { customer.rpc().get_balance(&wallet.pubkey()).await.unwrap() };

    // Without a priority fee: the deposit plus one signature's fee.
    let before = balance().await;
    customer
        .customer()
        .top_up(&created.request, 10)
        .await
        .unwrap();
    assert_eq!(before - balance().await, 10 * PRICE + 5_000);

    // 200 000 CU × 5 000 µlamports = 1 000 lamports on top.
    let before = balance().await;
    customer
        .transaction()
        .instruction(dagger_client::instructions::top_up(
            &wallet.pubkey(),
            &created.request,
            10,
        ))
        .compute_unit_limit(200_000)
        .priority_fee(5_000)
        .send()
        .await
        .expect("top up with a priority fee");
    assert_eq!(before - balance().await, 10 * PRICE + 5_000 + 1_000);

    // The same through client-wide options: 100 000 CU × 10 000 µlamports.
    let mut options = options();
    options.tx = TxOptions {
        compute_unit_price: Some(10_000),
        compute_unit_limit: Some(100_000),
        skip_preflight: false,
    };
    let priced =
        dagger_client::DaggerClient::new(customer.cluster().clone(), wallet.clone(), options)
            .unwrap();
    let before = balance().await;
    priced
        .customer()
        .top_up(&created.request, 10)
        .await
        .expect("top up");
    assert_eq!(before - balance().await, 10 * PRICE + 5_000 + 1_000);
    let request = customer.reader().request(&created.request).await.unwrap();
    assert_eq!(request.duration, DURATION + 30);
}

#[tokio::test]
async fn cancel_reclaim_and_waiting_report_why_a_request_ended() {
    let net = Network::start(Settings {
        provisioning_timeout: 10,
        ..Settings::default()
    })
    .await;
    let wallet = funded(&net.chain, 10).await;
    let customer = net.client(wallet.clone());

    // Cancel: refunded at once.
    let cancelled = customer
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    // Cancelled while the customer waits: the wait reports it.
    let (waited, cancelled_now) = tokio::join!(
        customer
            .customer()
            .wait_until_active(&cancelled.request, Duration::from_secs(10), |_| {}),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            customer.customer().cancel(&cancelled.request).await
        }
    );
    cancelled_now.expect("cancel");
    let error = waited.unwrap_err();
    assert!(
        matches!(error, ClientError::RequestClosed { request } if request == cancelled.request),
        "{error}"
    );

    // A wait shorter than the deadline times out.
    let expiring = customer
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    let error = customer
        .customer()
        .wait_until_active(&expiring.request, Duration::from_millis(200), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");

    // Reclaiming before the deadline is refused by the program.
    let stranger = net.client(funded(&net.chain, 1).await);
    let error = stranger
        .customer()
        .reclaim(&expiring.request)
        .await
        .unwrap_err();
    assert!(error.is_dagger(DaggerError::DeadlineNotReached), "{error}");
    assert!(dagger_failed(error.logs()), "{:?}", error.logs());

    // Nobody provisions it: waiting reports the expiry...
    let error = customer
        .customer()
        .wait_until_active(&expiring.request, Duration::from_secs(20), |_| {})
        .await
        .unwrap_err();
    match error {
        ClientError::RequestExpired { deadline, now, .. } => assert!(now > deadline),
        other => panic!("expected RequestExpired, got {other}"),
    }
    // ...and anyone can reclaim the deposit for the customer.
    let before = customer.rpc().get_balance(&wallet.pubkey()).await.unwrap();
    stranger
        .customer()
        .reclaim(&expiring.request)
        .await
        .expect("reclaim");
    let after = customer.rpc().get_balance(&wallet.pubkey()).await.unwrap();
    assert!(after - before >= PRICE * DURATION, "deposit refunded");
    assert!(matches!(
        customer.reader().request(&expiring.request).await,
        Err(ClientError::NotFound { .. })
    ));
}

#[tokio::test]
async fn an_operator_registers_stakes_updates_claims_and_leaves() {
    // Four operators of one SOL each: a quarter SOL more keeps this one
    // under the 30% stake cap.
    let net = Network::start(Settings {
        unbonding_period: 10,
        operators: 4,
        ..Settings::default()
    })
    .await;
    let keys = &net.operators[0];
    let owner = net.client(keys.owner.clone());
    let node = keys.node.pubkey();

    owner
        .operator()
        .add_stake(&node, LAMPORTS_PER_SOL / 4)
        .await
        .expect("add_stake");
    owner
        .operator()
        .update(
            &node,
            UpdateOperatorArgs {
                address: Some("10.0.0.7:7000".into()),
                ..Default::default()
            },
        )
        .await
        .expect("update address");
    let mut bigger = capacity();
    bigger.vcpus = 64;
    owner
        .operator()
        .update(
            &node,
            UpdateOperatorArgs {
                capacity: Some(bigger),
                ..Default::default()
            },
        )
        .await
        .expect("update capacity");
    let operator = owner.reader().operator(&node).await.unwrap();
    assert_eq!(operator.stake, MIN_STAKE + LAMPORTS_PER_SOL / 4);
    assert_eq!(operator.address, "10.0.0.7:7000");
    assert_eq!(operator.capacity.vcpus, 64);
    assert_eq!(operator.status, OperatorStatus::Active);
    let error = owner
        .operator()
        .register(
            &*keys.node,
            "127.0.0.1:1".into(),
            capacity(),
            MIN_STAKE,
            Default::default(),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("is already registered"),
        "{error}"
    );
    let error = owner
        .operator()
        .update(&node, UpdateOperatorArgs::default())
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::InvalidArgument(_)), "{error}");

    // A lease on this operator accrues; the owner claims it.
    let customer = net.client(funded(&net.chain, 10).await);
    let created = customer
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    net.provision(&created.request).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let owner_rpc = owner.rpc();
    let before = owner_rpc.get_balance(&keys.owner.pubkey()).await.unwrap();
    owner
        .operator()
        .claim(&node, &created.request)
        .await
        .expect("claim");
    let after = owner_rpc.get_balance(&keys.owner.pubkey()).await.unwrap();
    let lease = owner.reader().request(&created.request).await.unwrap();
    // The owner got what accrued minus the protocol fee, and paid the fee.
    let protocol_fee = lease.paid_out * FEE_BPS as u64 / 10_000;
    assert_eq!(after + 5_000, before + lease.paid_out - protocol_fee);
    assert!(lease.paid_out >= PRICE, "paid out {}", lease.paid_out);
    assert_eq!(
        owner
            .reader()
            .leases(Some(&keys.account()))
            .await
            .unwrap()
            .len(),
        1
    );

    // The customer ends the lease a second later (the operator's share of
    // that second stays in its vault as earnings); nothing is owed any more.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    customer
        .customer()
        .close_lease(&created.request)
        .await
        .expect("close_lease");
    let earnings = owner.reader().operator(&node).await.unwrap().earnings;
    assert!(earnings > 0);
    let before = owner_rpc.get_balance(&keys.owner.pubkey()).await.unwrap();
    owner
        .operator()
        .withdraw_earnings(&node)
        .await
        .expect("withdraw_earnings");
    let after = owner_rpc.get_balance(&keys.owner.pubkey()).await.unwrap();
    assert_eq!(after + 5_000, before + earnings);
    assert_eq!(owner.reader().operator(&node).await.unwrap().earnings, 0);
    let error = owner.operator().withdraw_earnings(&node).await.unwrap_err();
    assert!(matches!(error, ClientError::InvalidArgument(_)), "{error}");

    // Leaving: unstake, wait out the unbonding period, withdraw.
    owner
        .operator()
        .request_unstake(&node)
        .await
        .expect("request_unstake");
    let error = owner.operator().withdraw_stake(&node).await.unwrap_err();
    assert!(
        error.is_dagger(DaggerError::UnbondingNotFinished),
        "{error}"
    );
    tokio::time::sleep(Duration::from_millis(10_100)).await;
    owner
        .operator()
        .withdraw_stake(&node)
        .await
        .expect("withdraw_stake");
    let operator = owner.reader().operator(&node).await.unwrap();
    assert_eq!(operator.status, OperatorStatus::Exited);
    assert_eq!(operator.stake, 0);
    // Closing the exited account returns its rent; the key stays retired.
    owner.operator().close(&node).await.expect("close operator");
    assert!(matches!(
        owner.reader().operator(&node).await,
        Err(ClientError::NotFound { .. })
    ));
}

#[tokio::test]
async fn node_attestations_are_idempotent_and_share_one_tally() {
    let net = Network::start(Settings {
        operators: 3,
        ..Settings::default()
    })
    .await;
    let customer = net.client(funded(&net.chain, 10).await);
    let created = customer
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    let nonce = customer
        .reader()
        .request(&created.request)
        .await
        .unwrap()
        .nonce;
    let vote = Vote::Provision {
        request: created.request,
        nonce,
        operator: net.operators[1].account(),
        endpoint_hash: [3; 32],
    };
    let node = |i: usize| net.client(net.operators[i].node.clone());
    let subject = Subject::Provision {
        request: created.request,
        nonce,
    };

    let first = node(0)
        .node()
        .attest(&*net.operators[0].node, vote)
        .await
        .expect("first vote");
    assert!(matches!(
        first,
        AttestOutcome::Recorded { decided: false, .. }
    ));
    let tally = customer
        .reader()
        .attestation(&subject)
        .await
        .unwrap()
        .expect("tally open");
    assert_eq!(tally.rent_payer, net.operators[0].node.pubkey());
    assert_eq!(tally.ballots.len(), 1);

    // Voting again is a no-op, not an error.
    assert_eq!(
        node(0)
            .node()
            .attest(&*net.operators[0].node, vote)
            .await
            .unwrap(),
        AttestOutcome::AlreadyVoted
    );
    // The second voter passes the first voter as the tally's rent payer.
    let second = node(1)
        .node()
        .attest(&*net.operators[1].node, vote)
        .await
        .expect("second vote");
    assert!(matches!(
        second,
        AttestOutcome::Recorded { decided: false, .. }
    ));
    // 2 of 3 equal stakes is not more than 2/3; the third vote decides.
    let third = node(2)
        .node()
        .attest(&*net.operators[2].node, vote)
        .await
        .expect("third vote");
    assert!(matches!(
        third,
        AttestOutcome::Recorded { decided: true, .. }
    ));
    assert!(customer
        .reader()
        .attestation(&subject)
        .await
        .unwrap()
        .is_none());
    let lease = customer.reader().request(&created.request).await.unwrap();
    assert_eq!(lease.status, RequestStatus::Active);
    assert_eq!(lease.assigned_operator, net.operators[1].account());

    // A vote after the decision is not needed, and says so.
    assert_eq!(
        node(0)
            .node()
            .attest(&*net.operators[0].node, vote)
            .await
            .unwrap(),
        AttestOutcome::AlreadyDecided
    );

    // A key that is no operator is refused by the program.
    let stranger = funded(&net.chain, 1).await;
    let error = net
        .client(stranger.clone())
        .node()
        .attest(&*stranger, vote)
        .await
        .unwrap_err();
    assert!(
        matches!(error.program_failure(), Some(ProgramFailure::Anchor(_))),
        "{error}"
    );
}

#[tokio::test]
async fn the_reader_lists_and_filters_accounts() {
    let net = Network::start(Settings {
        operators: 2,
        ..Settings::default()
    })
    .await;
    let reader_client = net.client(Arc::new(Keypair::new()));
    let reader = reader_client.reader();

    let config = reader.config().await.unwrap();
    assert_eq!(config.admin, net.admin.pubkey());
    assert_eq!(config.treasury, net.treasury);
    assert_eq!(config.active_operators, 2);
    assert!(config.bootstrapped);

    // A third operator stays pending; one owner registers two nodes' worth.
    let pending = net.register_operator(7).await;
    let all = reader.operators(OperatorFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    let active = reader
        .operators(OperatorFilter {
            status: Some(OperatorStatus::Active),
            owner: None,
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 2);
    let mine = reader
        .operators(OperatorFilter {
            status: None,
            owner: Some(pending.owner.pubkey()),
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].0, pending.account());
    assert_eq!(mine[0].1.status, OperatorStatus::Pending);
    let none = reader
        .operators(OperatorFilter {
            status: Some(OperatorStatus::Active),
            owner: Some(pending.owner.pubkey()),
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(
        reader.operator(&pending.node.pubkey()).await.unwrap().owner,
        pending.owner.pubkey()
    );

    // Requests of two customers, one of them provisioned.
    let alice = net.client(funded(&net.chain, 10).await);
    let bob = net.client(funded(&net.chain, 10).await);
    let a1 = alice
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    let a2 = alice
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    let b1 = bob
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap();
    net.provision(&a2.request).await;

    let addresses = |list: Vec<(Pubkey, dagger_client::Request)>| {
        let mut keys: Vec<Pubkey> = list.into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys
    };
    let sorted = |mut keys: Vec<Pubkey>| {
        keys.sort();
        keys
    };
    assert_eq!(
        addresses(reader.requests(RequestFilter::default()).await.unwrap()),
        sorted(vec![a1.request, a2.request, b1.request])
    );
    assert_eq!(
        addresses(
            reader
                .requests(RequestFilter {
                    customer: Some(alice.wallet()),
                    status: None
                })
                .await
                .unwrap()
        ),
        sorted(vec![a1.request, a2.request])
    );
    assert_eq!(
        addresses(
            reader
                .requests(RequestFilter {
                    customer: None,
                    status: Some(RequestStatus::Open)
                })
                .await
                .unwrap()
        ),
        sorted(vec![a1.request, b1.request])
    );
    assert_eq!(
        addresses(
            reader
                .requests(RequestFilter {
                    customer: Some(bob.wallet()),
                    status: Some(RequestStatus::Active)
                })
                .await
                .unwrap()
        ),
        Vec::<Pubkey>::new()
    );
    assert_eq!(
        addresses(reader.leases(None).await.unwrap()),
        vec![a2.request]
    );
    assert!(reader
        .leases(Some(&net.operators[1].account()))
        .await
        .unwrap()
        .is_empty());

    // The cluster clock is wall-clock time on the local chain.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let cluster_now = reader.cluster_time().await.unwrap();
    assert!((cluster_now - now).abs() < 30, "{cluster_now} vs {now}");
}

#[tokio::test]
async fn user_errors_are_typed_and_carry_the_program_logs() {
    let net = Network::start(Settings::default()).await;
    let wallet = funded(&net.chain, 1).await;
    let customer = net.client(wallet.clone());
    let rpc = customer.rpc();

    // Not enough SOL for the deposit: refused before sending, nothing spent.
    let before = rpc.get_balance(&wallet.pubkey()).await.unwrap();
    let error = customer
        .customer()
        .create_request(spec(), 1_000_000, DURATION)
        .await
        .unwrap_err();
    match &error {
        ClientError::InsufficientFunds {
            wallet: who,
            needed,
            available,
        } => {
            assert_eq!(*who, wallet.pubkey());
            assert!(*needed > 1_000_000 * DURATION);
            assert_eq!(*available, before);
        }
        other => panic!("expected InsufficientFunds, got {other}"),
    }
    assert_eq!(rpc.get_balance(&wallet.pubkey()).await.unwrap(), before);

    // An unknown request.
    let nowhere = Pubkey::new_unique();
    for error in [
        customer.customer().cancel(&nowhere).await.unwrap_err(),
        customer.customer().top_up(&nowhere, 5).await.unwrap_err(),
        customer.customer().close_lease(&nowhere).await.unwrap_err(),
        customer
            .customer()
            .wait_until_active(&nowhere, Duration::from_secs(1), |_| {})
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(error, ClientError::NotFound { kind: "request", address } if address == nowhere),
            "{error}"
        );
    }
    // A request id this customer already used.
    let used = customer
        .customer()
        .create_request_with_id(7, spec(), PRICE, 60)
        .await
        .unwrap();
    let error = customer
        .customer()
        .create_request_with_id(7, spec(), PRICE, 60)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("request id 7 is already used"),
        "{error}"
    );
    customer.customer().cancel(&used.request).await.unwrap();

    // An account that is not DAGGER's.
    let error = customer
        .reader()
        .request(&wallet.pubkey())
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::WrongOwner { .. }), "{error}");

    // The wrong signer: another wallet cancels this customer's request.
    let created = customer
        .customer()
        .create_request(spec(), PRICE, 60)
        .await
        .unwrap();
    let intruder = net.client(funded(&net.chain, 1).await);
    let error = intruder
        .customer()
        .cancel(&created.request)
        .await
        .unwrap_err();
    assert!(error.is_dagger(DaggerError::NotCustomer), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("program refused instruction 0: DAGGER error NotCustomer"),
        "{error}"
    );
    assert!(dagger_failed(error.logs()), "{:?}", error.logs());
    assert!(error.signature().is_none(), "preflight refused it");

    // Without preflight the failure is found on-chain, logs from its meta.
    let mut options = options();
    options.tx.skip_preflight = true;
    options.tx.compute_unit_price = Some(1);
    let intruder_wallet = funded(&net.chain, 1).await;
    let unchecked =
        dagger_client::DaggerClient::new(customer.cluster().clone(), intruder_wallet, options)
            .unwrap();
    let error = unchecked
        .customer()
        .cancel(&created.request)
        .await
        .unwrap_err();
    match &error {
        ClientError::Program { index, failure, .. } => {
            assert_eq!(*index, 0, "compute budget instructions are not counted");
            assert!(failure.is(DaggerError::NotCustomer));
        }
        other => panic!("expected a program error, got {other}"),
    }
    assert!(error.signature().is_some(), "it landed");
    assert!(dagger_failed(error.logs()), "{:?}", error.logs());

    // A fee payer that has never held SOL.
    let empty = net.client(Arc::new(Keypair::new()));
    let error = empty.customer().cancel(&created.request).await.unwrap_err();
    assert!(matches!(error, ClientError::Transaction { .. }), "{error}");
    assert!(error.to_string().contains("fund it first"), "{error}");

    // The request is untouched by all of that, and its owner can cancel.
    customer.customer().cancel(&created.request).await.unwrap();
}

#[tokio::test]
async fn an_uninitialised_cluster_says_so() {
    let chain = start_chain().await;
    let client = client(&chain, funded(&chain, 1).await);
    let error = client.reader().config().await.unwrap_err();
    assert!(matches!(
        error,
        ClientError::NotFound { kind: "config", .. }
    ));
    assert!(error.to_string().contains("dagger-migrate"), "{error}");
    let error = client
        .customer()
        .create_request(spec(), PRICE, DURATION)
        .await
        .unwrap_err();
    // Anchor refuses the missing config account before the handler runs.
    assert!(
        matches!(error.program_failure(), Some(ProgramFailure::Anchor(_))),
        "{error}"
    );
}
