//! No memory leak per transaction.
//!
//! Method: this test binary installs a counting global allocator, so every
//! heap byte the in-process chain (surfpool, LiteSVM, the native adapter, the
//! program) allocates and frees is counted exactly. "Live heap" is bytes
//! allocated minus bytes freed. RSS would be the wrong gauge: the system
//! allocator keeps freed pages and fragments, so RSS drifts for reasons that
//! are not leaks and can hide small ones.
//!
//! The chain legitimately keeps something per transaction: like a validator's
//! ledger, surfpool stores every transaction with its status, logs and
//! balances (in memory here) so `getTransaction` and `getSignatureStatuses`
//! can answer for it. That costs a few KiB per transaction. So the test warms
//! the chain up, sends `TRANSACTIONS` DAGGER `add_stake` transactions (each
//! runs the program natively twice: preflight and execution, with a CPI to
//! the System Program), and bounds the live-heap growth per transaction by
//! `MAX_BYTES_PER_TRANSACTION`.
//!
//! What the bound catches: the adapter serialises each instruction's accounts
//! into a buffer with 10 KiB of realloc headroom per account (the loader's
//! ABI); `add_stake` passes five accounts, so leaking that buffer alone would
//! cost over 50 KiB per execution, and leaking the re-borrowed account views
//! or the invoke-context frame likewise scales with the transaction. Anything
//! of that kind breaks the bound several times over.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use common::*;
use dagger_client::{instructions as ix, Capacity, InitializeArgs};
use dagger_localnet::{LocalChainConfig, DEFAULT_SLOT_TIME_MS};
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_sdk::{
    native_token::LAMPORTS_PER_SOL,
    signature::{Keypair, Signature},
    signer::Signer,
    transaction::Transaction,
};

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counters only
// observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
            FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_heap_bytes() -> i64 {
    ALLOCATED.load(Ordering::Relaxed) as i64 - FREED.load(Ordering::Relaxed) as i64
}

/// Resident set size, printed for reference only (see the module docs).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Enough for caches, pools and tables to reach their working size.
const WARM_UP: u64 = 200;
/// Sized for an unoptimised (dev-profile) build, where ed25519 signing and
/// verification dominate: about a minute on two cores.
const TRANSACTIONS: u64 = 1_000;
/// See the module docs: a few KiB are the chain's ledger; a leaked account
/// buffer would be tens of KiB.
const MAX_BYTES_PER_TRANSACTION: i64 = 16 * 1024;
/// Transactions signed against one blockhash (it lives 150 slots).
const PER_BLOCKHASH: u64 = 50;

/// Sends `count` `add_stake` transactions with distinct amounts (so distinct
/// signatures) starting at `first_amount`, each accepted by preflight, and
/// waits until the last is confirmed.
async fn add_stakes(
    rpc: &RpcClient,
    owner: &Keypair,
    node: &Keypair,
    first_amount: u64,
    count: u64,
) {
    let mut last = Signature::default();
    let mut blockhash = rpc.get_latest_blockhash().await.expect("blockhash");
    for i in 0..count {
        if i % PER_BLOCKHASH == 0 {
            blockhash = rpc.get_latest_blockhash().await.expect("blockhash");
        }
        let tx = Transaction::new_signed_with_payer(
            &[ix::add_stake(
                &owner.pubkey(),
                &node.pubkey(),
                first_amount + i,
            )],
            Some(&owner.pubkey()),
            &[owner],
            blockhash,
        );
        last = rpc
            .send_transaction(&tx)
            .await
            .unwrap_or_else(|e| panic!("add_stake {i} rejected: {e}"));
    }
    confirm(rpc, &last).await;
}

/// Lets block production settle (confirmation queues drain) before a reading.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(3 * DEFAULT_SLOT_TIME_MS)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_heap_per_transaction_is_bounded() {
    // Solana's slot time: per-slot work stays a small share of the run.
    let chain = start_chain_with(LocalChainConfig::default()).await;
    let rpc = client(&chain);
    let admin = funded(&rpc, 10).await;
    send_ok(
        &rpc,
        &[ix::initialize(
            &admin.pubkey(),
            None,
            InitializeArgs {
                treasury: admin.pubkey(),
                min_operator_stake: LAMPORTS_PER_SOL,
                unbonding_period: 3600,
                provisioning_timeout: 600,
                protocol_fee_bps: 100,
                max_stake_share_bps: 3_000,
                removal_slash_bps: 500,
                equivocation_slash_bps: 5_000,
                reporter_reward_bps: 1_000,
            },
        )],
        &[&admin],
    )
    .await;
    let owner = funded(&rpc, 10).await;
    let node = Keypair::new();
    send_ok(
        &rpc,
        &[ix::register_operator(
            &owner.pubkey(),
            &node.pubkey(),
            "127.0.0.1:9000".into(),
            Capacity {
                vcpus: 1,
                memory_mib: 1024,
                disk_gib: 10,
                region: 1,
            },
            LAMPORTS_PER_SOL,
            Default::default(),
        )],
        &[&owner, &node],
    )
    .await;

    add_stakes(&rpc, &owner, &node, 1, WARM_UP).await;
    settle().await;
    let (heap_before, rss_before) = (live_heap_bytes(), rss_kib());

    let started = Instant::now();
    add_stakes(&rpc, &owner, &node, 1 + WARM_UP, TRANSACTIONS).await;
    let elapsed = started.elapsed();
    settle().await;
    let (heap_after, rss_after) = (live_heap_bytes(), rss_kib());

    let per_transaction = (heap_after - heap_before) / TRANSACTIONS as i64;
    eprintln!(
        "{TRANSACTIONS} transactions in {elapsed:?}: live heap {heap_before} -> {heap_after} \
         bytes ({per_transaction} bytes per transaction); RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(
        per_transaction <= MAX_BYTES_PER_TRANSACTION,
        "live heap grew {per_transaction} bytes per transaction (bound {MAX_BYTES_PER_TRANSACTION})"
    );
    chain.shutdown().await.expect("clean shutdown");
}
