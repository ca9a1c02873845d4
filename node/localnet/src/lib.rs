//! A local Solana chain for DAGGER: the standard Solana JSON-RPC (HTTP and
//! websocket) served by [surfpool](https://crates.io/crates/surfpool-core)
//! on this machine, offline, with the `dagger` program registered natively.
//!
//! Any Solana client (`solana` CLI, `solana-rpc-client`, anchor-client, the
//! DAGGER SDK) talks to it as it would to devnet. Transactions go through
//! Agave's real transaction processor (LiteSVM inside surfpool), and the
//! chain enforces what a cluster enforces for them:
//!
//! - **signatures** are verified before execution, with or without preflight
//!   (`SimnetConfig::skip_signature_verification` is `false`). Surfpool also
//!   accepts a non-standard `skipSigVerify: true` in `sendTransaction`'s
//!   config, which skips the check for that transaction; standard clients
//!   never send it;
//! - **blockhashes** must be one of the last 150
//!   (`SurfnetSvmConfig::skip_blockhash_check` is `false`; that is the flag
//!   surfpool 1.3.1 reads, the `SimnetConfig` one is set to match);
//! - surfpool's state-editing `surfnet_*` RPC methods ("cheatcodes":
//!   `surfnet_setAccount`, `surfnet_resetNetwork`, ...) are disabled and
//!   locked unless [`LocalChainConfig::cheatcodes`] asks for them, so state
//!   changes only through transactions. `surfnet_resetNetwork` would also
//!   drop the natively registered program.
//!
//! The program is compiled for the host and run through
//! `dagger-native-runtime` as a builtin, because SBF cannot be built here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dagger_localnet::LocalnetError> {
//! let chain = dagger_localnet::LocalChain::start(Default::default()).await?;
//! println!("{} {}", chain.rpc_url(), chain.ws_url());
//! chain.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! State lives in memory only. Surfpool can persist to SQLite, but on a
//! persisted chain it periodically rebuilds its inner runtime from the
//! database ("garbage collection"), which would drop the native builtin, so
//! this crate does not offer persistence.

mod events;
mod program;
mod rpc;

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::json;
use solana_pubkey::Pubkey;
use surfpool_core::surfnet::svm::{SurfnetSvm, SurfnetSvmConfig};
use surfpool_types::{
    BlockProductionMode, ClockCommand, RpcConfig, SimnetCommand, SimnetConfig, SurfpoolConfig,
};

use crate::{events::Lifecycle, program::DaggerProgram};

/// The program id the chain serves `dagger` under.
pub const PROGRAM_ID: Pubkey = dagger::ID;

/// Solana's slot time; the default, so timing-sensitive code sees cluster pace.
pub const DEFAULT_SLOT_TIME_MS: u64 = 400;

/// How long [`LocalChain::shutdown`] waits for the runloop and both servers.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Surfpool's cap on a transaction's log output, as on a cluster.
const LOG_BYTES_LIMIT: usize = 10_000;

/// Slot interval handed to surfpool's clock thread just before termination.
/// That thread has no exit (surfpool 1.3.1 loops forever); parking it on a
/// day-long sleep keeps a stopped chain from waking a CPU every slot.
const PARKED_CLOCK_INTERVAL_MS: u64 = 24 * 3600 * 1000;

/// Interval between readiness / port probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How to run the chain. `Default` gives a loopback chain on free ports with
/// Solana's slot time and cheatcodes locked.
#[derive(Debug, Clone)]
pub struct LocalChainConfig {
    /// Interface the RPC servers bind to. The chain has no authentication:
    /// keep it on loopback unless the network is trusted.
    pub bind: IpAddr,
    /// HTTP JSON-RPC port; `None` or `Some(0)` picks a free port.
    pub rpc_port: Option<u16>,
    /// Websocket (PubSub) port; `None` or `Some(0)` picks a free port.
    pub ws_port: Option<u16>,
    /// Milliseconds per slot. A blockhash expires after 150 slots.
    pub slot_time_ms: u64,
    /// Wallets credited with `airdrop_lamports` at startup.
    pub airdrop: Vec<Pubkey>,
    /// Lamports for each wallet in `airdrop`.
    pub airdrop_lamports: u64,
    /// Keep surfpool's `surfnet_*` state-editing RPC methods (time travel,
    /// `surfnet_setAccount`, ...) enabled. Off by default: with them, state
    /// can change without a signed transaction.
    pub cheatcodes: bool,
    /// How long [`LocalChain::start`] waits for the chain to answer RPC.
    pub ready_timeout: Duration,
}

impl Default for LocalChainConfig {
    fn default() -> Self {
        LocalChainConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rpc_port: None,
            ws_port: None,
            slot_time_ms: DEFAULT_SLOT_TIME_MS,
            airdrop: Vec::new(),
            airdrop_lamports: 100 * 1_000_000_000,
            cheatcodes: false,
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the chain could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot listen on {addr}: {source}")]
    AddressUnavailable {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the runtime: {0}")]
    Svm(String),
    #[error("cannot spawn thread {thread}: {source}")]
    Spawn {
        thread: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the chain failed to start: {0}")]
    Startup(String),
    #[error("the chain did not answer RPC within {0:?}")]
    NotReady(Duration),
    #[error("RPC {method} to the chain failed: {reason}")]
    Rpc {
        method: &'static str,
        reason: String,
    },
    #[error("the chain's runloop failed: {0}")]
    Runloop(String),
    #[error("the chain did not stop within {0:?}")]
    ShutdownTimeout(Duration),
    #[error("a background task panicked: {0}")]
    Panicked(String),
}

/// A running chain. Stop it with [`LocalChain::shutdown`]; dropping it stops
/// it too (blocking the dropping thread until the ports are free).
pub struct LocalChain {
    rpc_addr: SocketAddr,
    ws_addr: SocketAddr,
    commands: Sender<SimnetCommand>,
    lifecycle: Receiver<Lifecycle>,
    runloop: Option<JoinHandle<()>>,
    drain: Option<(Sender<()>, JoinHandle<()>)>,
}

impl LocalChain {
    /// Starts a chain and returns once it answers `getHealth`.
    pub async fn start(config: LocalChainConfig) -> Result<LocalChain, LocalnetError> {
        tokio::task::spawn_blocking(move || LocalChain::start_blocking(config))
            .await
            .map_err(|e| LocalnetError::Panicked(e.to_string()))?
    }

    /// [`LocalChain::start`] for callers without an async runtime.
    pub fn start_blocking(config: LocalChainConfig) -> Result<LocalChain, LocalnetError> {
        if config.slot_time_ms == 0 {
            return Err(LocalnetError::InvalidConfig(
                "slot_time_ms must be positive".into(),
            ));
        }
        let (rpc_addr, ws_addr) = resolve_addresses(&config)?;

        let (mut svm, events_rx, geyser_rx) = SurfnetSvm::new(SurfnetSvmConfig {
            surfnet_id: "dagger-localnet".into(),
            slot_time: config.slot_time_ms,
            // Profiling re-executes every transaction on a clone of the whole
            // runtime; a dev chain does not need it.
            instruction_profiling_enabled: false,
            max_profiles: 1,
            log_bytes_limit: Some(LOG_BYTES_LIMIT),
            skip_blockhash_check: false,
            ..SurfnetSvmConfig::default()
        })
        .map_err(|e| LocalnetError::Svm(e.to_string()))?;
        // The inner LiteSVM is the same `litesvm` 0.12 / Agave 3.1 build the
        // adapter is compiled against, so the builtin's type is the runtime's.
        // Its own sigverify/blockhash flags stay off: surfpool checks both
        // itself, against its 150-entry blockhash queue (LiteSVM's check
        // accepts only the latest blockhash), and LiteSVM-level sigverify
        // would break `simulateTransaction` with `sigVerify: false`.
        svm.inner.svm.add_builtin(
            PROGRAM_ID,
            dagger_native_runtime::builtin::<DaggerProgram>(),
        );

        let surfpool_config = SurfpoolConfig {
            simnets: vec![SimnetConfig {
                offline_mode: true,
                remote_rpc_url: None,
                slot_time: config.slot_time_ms,
                block_production_mode: BlockProductionMode::Clock,
                airdrop_addresses: config.airdrop.clone(),
                airdrop_token_amount: config.airdrop_lamports,
                expiry: None,
                instruction_profiling_enabled: false,
                max_profiles: 1,
                log_bytes_limit: Some(LOG_BYTES_LIMIT),
                skip_signature_verification: false,
                // Not read by surfpool-core 1.3.1 (the SVM config's flag is);
                // kept in step with it.
                skip_blockhash_check: false,
                ..SimnetConfig::default()
            }],
            rpc: RpcConfig {
                // Surfpool appends `:port` to this string and parses it.
                bind_host: match config.bind {
                    IpAddr::V4(ip) => ip.to_string(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                },
                bind_port: rpc_addr.port(),
                ws_port: ws_addr.port(),
                ..RpcConfig::default()
            },
            ..SurfpoolConfig::default()
        };

        let (lifecycle_tx, lifecycle_rx) = crossbeam_channel::unbounded();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let drain =
            events::spawn_drain(events_rx, lifecycle_tx.clone(), stop_rx).map_err(|source| {
                LocalnetError::Spawn {
                    thread: "localnet-events",
                    source,
                }
            })?;
        let (commands_tx, commands_rx) = crossbeam_channel::unbounded();
        let runloop_commands = commands_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("localnet-runloop".into())
            .spawn(move || {
                let result = run_surfnet(
                    surfpool_config,
                    svm,
                    runloop_commands,
                    commands_rx,
                    geyser_rx,
                );
                let _ = lifecycle_tx.send(Lifecycle::RunloopExited(result));
            });
        let mut chain = LocalChain {
            rpc_addr,
            ws_addr,
            commands: commands_tx,
            lifecycle: lifecycle_rx,
            runloop: None,
            drain: Some((stop_tx, drain)),
        };
        chain.runloop = Some(spawned.map_err(|source| LocalnetError::Spawn {
            thread: "localnet-runloop",
            source,
        })?);

        // On failure `chain` is dropped here, which stops whatever did start.
        chain.await_ready(&config)?;
        tracing::info!(rpc = %chain.rpc_url(), ws = %chain.ws_url(), program = %PROGRAM_ID, "local chain ready");
        Ok(chain)
    }

    /// The HTTP JSON-RPC endpoint, e.g. `http://127.0.0.1:8899`.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// The websocket (PubSub) endpoint, e.g. `ws://127.0.0.1:8900`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.ws_addr)
    }

    /// The HTTP JSON-RPC socket address.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// The websocket socket address.
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_addr
    }

    /// Stops the chain and returns once both ports can be bound again.
    pub async fn shutdown(mut self) -> Result<(), LocalnetError> {
        tokio::task::spawn_blocking(move || self.stop())
            .await
            .map_err(|e| LocalnetError::Panicked(e.to_string()))?
    }

    /// [`LocalChain::shutdown`] for callers without an async runtime.
    pub fn shutdown_blocking(mut self) -> Result<(), LocalnetError> {
        self.stop()
    }

    /// Waits for surfpool's `Ready`, then for a healthy RPC answer, then
    /// locks the cheatcodes unless they were asked for.
    fn await_ready(&mut self, config: &LocalChainConfig) -> Result<(), LocalnetError> {
        let deadline = Instant::now() + config.ready_timeout;
        // Surfpool sends nothing on this channel before `Ready` except on failure.
        match self.lifecycle.recv_timeout(config.ready_timeout) {
            Ok(Lifecycle::Ready) => {}
            // A server failed to start; the runloop returns an error next.
            Ok(Lifecycle::Aborted(reason)) => {
                self.await_runloop_exit(deadline);
                return Err(LocalnetError::Startup(reason));
            }
            Ok(Lifecycle::RunloopExited(result)) => {
                self.join_runloop()?;
                return Err(LocalnetError::Startup(
                    result
                        .err()
                        .unwrap_or_else(|| "runloop exited before ready".into()),
                ));
            }
            Ok(Lifecycle::ServerClosed) => {
                return Err(LocalnetError::Startup(
                    "an RPC server stopped during startup".into(),
                ))
            }
            Err(_) => return Err(LocalnetError::NotReady(config.ready_timeout)),
        }

        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rpc::call(
                self.rpc_addr,
                "getHealth",
                json!([]),
                remaining.max(POLL_INTERVAL),
            ) {
                Ok(health) if health == "ok" => break,
                Ok(other) => tracing::debug!(health = %other, "chain not healthy yet"),
                Err(reason) => tracing::debug!(%reason, "chain not answering yet"),
            }
            if Instant::now() >= deadline {
                return Err(LocalnetError::NotReady(config.ready_timeout));
            }
            std::thread::sleep(POLL_INTERVAL);
        }

        if !config.cheatcodes {
            // "all" + lockout also disables surfnet_enableCheatcode itself.
            rpc::call(
                self.rpc_addr,
                "surfnet_disableCheatcode",
                json!(["all", { "lockout": true }]),
                config.ready_timeout,
            )
            .map_err(|reason| LocalnetError::Rpc {
                method: "surfnet_disableCheatcode",
                reason,
            })?;
        }
        Ok(())
    }

    /// Terminates the runloop, waits for both servers to close and their
    /// ports to be free, then stops the event drain. Idempotent.
    fn stop(&mut self) -> Result<(), LocalnetError> {
        if self.runloop.is_none() {
            self.stop_drain();
            return Ok(());
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        // Sends fail only if the runloop already exited; that is reported below.
        let _ = self.commands.send(SimnetCommand::CommandClock(
            None,
            ClockCommand::UpdateSlotInterval(PARKED_CLOCK_INTERVAL_MS),
        ));
        let _ = self.commands.send(SimnetCommand::Terminate(None));

        let mut runloop_result = None;
        let mut servers_closed = 0;
        while runloop_result.is_none() || servers_closed < 2 {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.lifecycle.recv_timeout(remaining) {
                Ok(Lifecycle::RunloopExited(result)) => runloop_result = Some(result),
                Ok(Lifecycle::ServerClosed) => servers_closed += 1,
                Ok(Lifecycle::Ready | Lifecycle::Aborted(_)) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.stop_drain();
                    return Err(match runloop_result {
                        // The runloop died on its own and left its servers up.
                        Some(Err(reason)) => LocalnetError::Runloop(reason),
                        _ => LocalnetError::ShutdownTimeout(SHUTDOWN_TIMEOUT),
                    });
                }
            }
        }
        self.join_runloop()?;
        self.stop_drain();
        wait_until_free(&[self.rpc_addr, self.ws_addr], deadline)?;
        tracing::info!(rpc = %self.rpc_addr, ws = %self.ws_addr, "local chain stopped");
        match runloop_result {
            Some(Err(reason)) => Err(LocalnetError::Runloop(reason)),
            _ => Ok(()),
        }
    }

    /// After a failed start: waits (until `deadline`) for the runloop to
    /// return so the chain does not wait for servers that never started.
    fn await_runloop_exit(&mut self, deadline: Instant) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        while let Ok(event) = self.lifecycle.recv_timeout(remaining) {
            if let Lifecycle::RunloopExited(_) = event {
                if let Err(error) = self.join_runloop() {
                    tracing::error!(%error, "joining the failed runloop");
                }
                return;
            }
        }
    }

    fn join_runloop(&mut self) -> Result<(), LocalnetError> {
        match self.runloop.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| LocalnetError::Panicked("surfnet runloop".into())),
            None => Ok(()),
        }
    }

    fn stop_drain(&mut self) {
        if let Some((stop, handle)) = self.drain.take() {
            let _ = stop.send(());
            if handle.join().is_err() {
                tracing::error!("event drain thread panicked");
            }
        }
    }
}

impl Drop for LocalChain {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "stopping the local chain failed");
        }
    }
}

impl std::fmt::Debug for LocalChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChain")
            .field("rpc_addr", &self.rpc_addr)
            .field("ws_addr", &self.ws_addr)
            .field("running", &self.runloop.is_some())
            .finish()
    }
}

/// Runs surfpool's runloop to completion on this thread. It needs a tokio
/// runtime, and its block-production loop blocks its thread on channel
/// selects, so it gets a thread and a runtime of its own.
fn run_surfnet(
    config: SurfpoolConfig,
    svm: SurfnetSvm,
    commands_tx: Sender<SimnetCommand>,
    commands_rx: Receiver<SimnetCommand>,
    geyser_rx: Receiver<surfpool_core::surfnet::GeyserEvent>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("localnet-rt")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime
        .block_on(surfpool_core::start_local_surfnet(
            svm,
            config,
            commands_tx,
            commands_rx,
            geyser_rx,
        ))
        .map_err(|e| e.to_string())
}

/// Picks the RPC and websocket addresses: the requested ports if they are
/// free, otherwise ports the OS hands out. Typed errors here beat surfpool's
/// string errors for the common "port already in use" case.
fn resolve_addresses(config: &LocalChainConfig) -> Result<(SocketAddr, SocketAddr), LocalnetError> {
    let wanted = |port: Option<u16>| port.filter(|p| *p != 0);
    if let (Some(rpc), Some(ws)) = (wanted(config.rpc_port), wanted(config.ws_port)) {
        if rpc == ws {
            return Err(LocalnetError::InvalidConfig(format!(
                "rpc_port and ws_port are both {rpc}"
            )));
        }
    }
    // Hold the first listener while binding the second so the two differ.
    let rpc = bind(config.bind, wanted(config.rpc_port))?;
    let ws = bind(config.bind, wanted(config.ws_port))?;
    let addrs = (local_addr(&rpc)?, local_addr(&ws)?);
    // Surfpool binds them itself right after; the window in between is the
    // usual one for "find a free port" and is not worth more machinery.
    drop((rpc, ws));
    Ok(addrs)
}

fn bind(ip: IpAddr, port: Option<u16>) -> Result<TcpListener, LocalnetError> {
    let addr = SocketAddr::new(ip, port.unwrap_or(0));
    TcpListener::bind(addr).map_err(|source| LocalnetError::AddressUnavailable { addr, source })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, LocalnetError> {
    listener
        .local_addr()
        .map_err(|source| LocalnetError::Startup(format!("local address of a listener: {source}")))
}

/// Polls until every address can be bound, i.e. the servers really let go.
fn wait_until_free(addrs: &[SocketAddr], deadline: Instant) -> Result<(), LocalnetError> {
    for addr in addrs {
        loop {
            match TcpListener::bind(addr) {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => std::thread::sleep(POLL_INTERVAL),
                Err(_) => return Err(LocalnetError::ShutdownTimeout(SHUTDOWN_TIMEOUT)),
            }
        }
    }
    Ok(())
}
