//! The relay between real UDP sockets: datagrams take the modelled path in
//! both directions, strangers are not relayed, partitions cut.

use std::{
    net::UdpSocket,
    time::{Duration, Instant},
};

use dagger_wan::{LinkSpec, NetSpec, Partition, Relay};

fn node() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

fn receive(socket: &UdpSocket) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let mut buf = [0u8; 2048];
    let (len, from) = socket.recv_from(&mut buf).ok()?;
    Some((buf[..len].to_vec(), from))
}

#[test]
fn datagrams_take_the_delay_both_ways_through_one_socket_per_pair() {
    let (a, b, c) = (node(), node(), node());
    let addrs = [
        a.local_addr().unwrap(),
        b.local_addr().unwrap(),
        c.local_addr().unwrap(),
    ];
    let rtt = Duration::from_millis(80);
    let relay = Relay::start(NetSpec::uniform(3, rtt, LinkSpec::default()), &addrs).unwrap();

    let sent = Instant::now();
    a.send_to(b"ping", relay.addr(0, 1)).unwrap();
    let (data, via) = receive(&b).expect("b gets a's datagram");
    assert_eq!(data, b"ping");
    assert!(
        sent.elapsed() >= rtt / 2,
        "arrived after {:?}",
        sent.elapsed()
    );
    assert_eq!(
        via,
        relay.addr(0, 1),
        "b sees the relay, so its answer goes back through it"
    );
    b.send_to(b"pong", via).unwrap();
    let (data, via) = receive(&a).expect("a gets b's answer");
    assert_eq!(data, b"pong");
    assert_eq!(via, relay.addr(0, 1));
    assert!(
        sent.elapsed() >= rtt,
        "a round trip took {:?}",
        sent.elapsed()
    );
    assert_eq!(relay.link_stats(0, 1).datagrams, 1);
    assert_eq!(relay.link_stats(1, 0).datagrams, 1);

    // A socket that is neither end of the pair is not relayed.
    let stranger = node();
    stranger.send_to(b"let me in", relay.addr(0, 1)).unwrap();
    c.send_to(b"wrong pair", relay.addr(0, 1)).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(receive(&b).is_none(), "a stranger's datagram was relayed");
    assert_eq!(relay.report().totals.datagrams, 2);
}

/// Long enough that a loaded machine still gets a datagram to the relay
/// within it.
const CUT: Duration = Duration::from_millis(1500);

#[test]
fn a_partition_cuts_from_the_epoch_and_heals() {
    let (a, b) = (node(), node());
    let addrs = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    let spec = NetSpec::uniform(2, Duration::ZERO, LinkSpec::default())
        .with_partitions(vec![Partition::isolate(1, Duration::ZERO, CUT)])
        .unwrap();
    let relay = Relay::start(spec, &addrs).unwrap();
    a.send_to(b"before the epoch", relay.addr(0, 1)).unwrap();
    assert_eq!(
        receive(&b).unwrap().0,
        b"before the epoch",
        "no cut before the epoch"
    );
    relay.set_epoch();
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    a.send_to(b"cut", relay.addr(0, 1)).unwrap();
    assert!(receive(&b).is_none(), "crossed the partition");
    std::thread::sleep(CUT + Duration::from_millis(100));
    a.send_to(b"healed", relay.addr(0, 1)).unwrap();
    assert_eq!(receive(&b).unwrap().0, b"healed");
    let report = relay.report();
    assert_eq!((report.totals.datagrams, report.totals.cut), (3, 1));
}

#[test]
fn a_spec_for_other_nodes_is_refused() {
    let a = node();
    let err = Relay::start(
        NetSpec::uniform(3, Duration::ZERO, LinkSpec::default()),
        &[a.local_addr().unwrap()],
    )
    .err()
    .expect("3 nodes in the spec, 1 address");
    assert!(err.to_string().contains("3 nodes"), "{err}");
}
