//! The emulator's I/O: one UDP socket per ordered pair of nodes, on which
//! node `a` reaches node `b`. A datagram from `a` goes on to `b` from the
//! same socket, so `b`'s answers come back through it and go on to `a`;
//! both directions take the [`Model`]'s verdicts. Everything runs on one
//! thread of its own (a single-threaded tokio runtime), whose CPU time
//! [`Relay::report`] states, so the emulator's cost is never mistaken for
//! the nodes'.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    io,
    net::{SocketAddr, UdpSocket as StdUdpSocket},
    sync::{
        atomic::{AtomicI32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use serde::Serialize;
use tokio::{net::UdpSocket, sync::Notify};

use crate::{
    model::{LinkStats, Model, Verdict},
    spec::NetSpec,
};

/// Largest datagram relayed (a UDP payload's limit).
const MAX_DATAGRAM: usize = 65_535;
/// Socket buffers: a burst of a node's pushes must not be dropped by the
/// kernel before the model decides about it.
const SOCKET_BUFFER: usize = 4 << 20;

/// What the emulator did, and what it cost.
#[derive(Clone, Debug, Serialize)]
pub struct RelayReport {
    #[serde(flatten)]
    pub totals: LinkStats,
    /// Datagrams the kernel would not take on the way out.
    pub send_errors: u64,
    /// How late datagrams left against their modelled time (the timer's
    /// resolution is a millisecond): mean and largest, µs.
    pub late_mean_us: f64,
    pub late_max_us: u64,
    /// CPU seconds of the relay's thread so far.
    pub cpu_s: f64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: Instant,
    seq: u64,
    socket: usize,
    to: SocketAddr,
    data: Vec<u8>,
}

struct Shared {
    model: Mutex<Model>,
    queue: Mutex<BinaryHeap<Reverse<Pending>>>,
    wake: Notify,
    start: Instant,
    seq: AtomicU64,
    send_errors: AtomicU64,
    late_sum_us: AtomicU64,
    late_count: AtomicU64,
    late_max_us: AtomicU64,
    /// The relay thread's id, for its CPU time.
    tid: AtomicI32,
}

/// A running emulator between `n` nodes' UDP addresses.
pub struct Relay {
    /// `addrs[a][b]`: where node `a` sends to reach node `b`.
    addrs: Vec<Vec<Option<SocketAddr>>>,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying between `nodes` (each node's own UDP address, where
    /// its QUIC endpoint listens) as `spec` says.
    pub fn start(spec: NetSpec, nodes: &[SocketAddr]) -> io::Result<Relay> {
        let n = nodes.len();
        if spec.nodes() != n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the network has {} nodes, {n} addresses given",
                    spec.nodes()
                ),
            ));
        }
        raise_open_files_limit(n * n + 64);
        let mut addrs = vec![vec![None; n]; n];
        let mut sockets = Vec::new();
        for (a, row) in addrs.iter_mut().enumerate() {
            for (b, &node) in nodes.iter().enumerate().filter(|&(b, _)| b != a) {
                let socket = bind_near(node, nodes)?;
                row[b] = Some(socket.local_addr()?);
                sockets.push((socket, a, b));
            }
        }
        let shared = Arc::new(Shared {
            model: Mutex::new(Model::new(spec)),
            queue: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            start: Instant::now(),
            seq: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            late_sum_us: AtomicU64::new(0),
            late_count: AtomicU64::new(0),
            late_max_us: AtomicU64::new(0),
            tid: AtomicI32::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let nodes = nodes.to_vec();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wan-relay".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                thread_shared.tid.store(tid, Ordering::Relaxed);
                runtime.block_on(serve(thread_shared, sockets, nodes, stopped));
            })?;
        while shared.tid.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        Ok(Relay {
            addrs,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where node `from` sends to reach node `to`.
    pub fn addr(&self, from: usize, to: usize) -> SocketAddr {
        self.addrs[from][to].expect("a node does not relay to itself")
    }

    /// Partitions' times count from now on (none is in force before the
    /// first call).
    pub fn set_epoch(&self) {
        let now = self.shared.start.elapsed();
        self.shared.model.lock().unwrap().set_epoch(now);
    }

    pub fn spec(&self) -> NetSpec {
        self.shared.model.lock().unwrap().spec().clone()
    }

    /// Counters of the direction `from` → `to`.
    pub fn link_stats(&self, from: usize, to: usize) -> LinkStats {
        self.shared.model.lock().unwrap().link_stats(from, to)
    }

    pub fn report(&self) -> RelayReport {
        let s = &self.shared;
        let count = s.late_count.load(Ordering::Relaxed).max(1);
        RelayReport {
            totals: s.model.lock().unwrap().totals(),
            send_errors: s.send_errors.load(Ordering::Relaxed),
            late_mean_us: s.late_sum_us.load(Ordering::Relaxed) as f64 / count as f64,
            late_max_us: s.late_max_us.load(Ordering::Relaxed),
            cpu_s: thread_cpu_seconds(s.tid.load(Ordering::Relaxed)).unwrap_or(0.0),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A socket on `node`'s address with a port none of `nodes` uses. The
/// nodes' ports were picked by binding and releasing them before the nodes
/// start, so the kernel may offer one of them again: such a socket is
/// held until the search ends (so the kernel does not offer it twice) and
/// then closed, or the node would find its port taken.
fn bind_near(node: SocketAddr, nodes: &[SocketAddr]) -> io::Result<StdUdpSocket> {
    let mut taken = Vec::new();
    for _ in 0..64 {
        let socket = bind_any_port(node)?;
        let port = socket.local_addr()?.port();
        if nodes.iter().any(|n| n.port() == port) {
            taken.push(socket);
            continue;
        }
        return Ok(socket);
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "every port offered was a node's",
    ))
}

/// A socket on the loopback (or the node's own) interface, on any port,
/// with large buffers.
fn bind_any_port(node: SocketAddr) -> io::Result<StdUdpSocket> {
    let ip = node.ip();
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(node),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps buffers at its own maximum.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    Ok(socket.into())
}

/// A relay of 16 nodes holds 240 sockets, of 64 nodes 4 032: more than the
/// usual soft limit of 1 024 open files.
fn raise_open_files_limit(want: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct passed, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && (limit.rlim_cur as usize) < want
        {
            limit.rlim_cur = limit.rlim_max.min(want as libc::rlim_t * 2);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// CPU seconds of thread `tid` of this process.
fn thread_cpu_seconds(tid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((utime + stime) / if ticks > 0 { ticks as f64 } else { 100.0 })
}

async fn serve(
    shared: Arc<Shared>,
    sockets: Vec<(StdUdpSocket, usize, usize)>,
    nodes: Vec<SocketAddr>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut out = Vec::new();
    for (socket, a, b) in sockets {
        match UdpSocket::from_std(socket) {
            Ok(socket) => out.push((Arc::new(socket), a, b)),
            Err(err) => {
                tracing::error!(%err, "the relay cannot use its socket; relaying nothing");
                return;
            }
        }
    }
    for (index, (socket, a, b)) in out.iter().enumerate() {
        let ends = (*a, nodes[*a], *b, nodes[*b]);
        tasks.spawn(receive(shared.clone(), socket.clone(), index, ends));
    }
    let out = out.into_iter().map(|(socket, _, _)| socket).collect();
    tasks.spawn(deliver(shared.clone(), out));
    let _ = stopped.await;
    tasks.abort_all();
}

/// Reads datagrams from one pair's socket and asks the model about each.
async fn receive(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    index: usize,
    (a, addr_a, b, addr_b): (usize, SocketAddr, usize, SocketAddr),
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        // ICMP errors and the like end one read, not the relay (a pause, so
        // an error that repeats cannot spin a core).
        let Ok((len, source)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            continue;
        };
        let (from, to, dest) = if source == addr_a {
            (a, b, addr_b)
        } else if source == addr_b {
            (b, a, addr_a)
        } else {
            // Not one of this pair's nodes: the emulator relays nobody else.
            continue;
        };
        let now = Instant::now();
        let since = now.duration_since(shared.start);
        let verdict = shared.model.lock().unwrap().send(from, to, len, since);
        let Verdict::Deliver(at) = verdict else {
            continue;
        };
        let at = shared.start + at;
        if at <= now {
            send(&shared, &socket, &buf[..len], dest);
            continue;
        }
        let pending = Pending {
            at,
            seq: shared.seq.fetch_add(1, Ordering::Relaxed),
            socket: index,
            to: dest,
            data: buf[..len].to_vec(),
        };
        let earliest = {
            let mut queue = shared.queue.lock().unwrap();
            let earliest = queue.peek().is_none_or(|Reverse(first)| at < first.at);
            queue.push(Reverse(pending));
            earliest
        };
        if earliest {
            shared.wake.notify_one();
        }
    }
}

fn send(shared: &Shared, socket: &UdpSocket, data: &[u8], to: SocketAddr) {
    if socket.try_send_to(data, to).is_err() {
        shared.send_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends queued datagrams when they are due.
async fn deliver(shared: Arc<Shared>, sockets: Vec<Arc<UdpSocket>>) {
    loop {
        let now = Instant::now();
        let (due, next) = {
            let mut queue = shared.queue.lock().unwrap();
            match queue.peek() {
                Some(Reverse(p)) if p.at <= now => (queue.pop().map(|Reverse(p)| p), None),
                Some(Reverse(p)) => (None, Some(p.at)),
                None => (None, None),
            }
        };
        match (due, next) {
            (Some(p), _) => {
                let late = now.duration_since(p.at).as_micros() as u64;
                shared.late_sum_us.fetch_add(late, Ordering::Relaxed);
                let sent = shared.late_count.fetch_add(1, Ordering::Relaxed);
                shared.late_max_us.fetch_max(late, Ordering::Relaxed);
                send(&shared, &sockets[p.socket], &p.data, p.to);
                // A long backlog must not keep the receivers (same thread)
                // from reading.
                if sent % 64 == 63 {
                    tokio::task::yield_now().await;
                }
            }
            (None, Some(at)) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = shared.wake.notified() => {}
                }
            }
            (None, None) => shared.wake.notified().await,
        }
    }
}
