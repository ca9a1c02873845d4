//! The SSH host-key probe against a real SSH server (the dropbear the
//! default image runs): the pinned key passes, another key is refused, and
//! a port where nothing speaks SSH is an error, not a pass.

use std::{
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use dagger_node::provisioner::{
    qemu::dropbear_ed25519_key,
    ssh_probe::{check_host_key, ProbeError},
};
use ed25519_dalek::SigningKey;

const DROPBEAR: &str = "/usr/sbin/dropbear";

struct Server {
    child: Child,
    address: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dropbear in the foreground on a free loopback port with `seed`'s key.
fn dropbear(dir: &std::path::Path, seed: [u8; 32]) -> Option<Server> {
    if !std::path::Path::new(DROPBEAR).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("dropbear is missing; .ci/run installs dropbear-bin");
        }
        eprintln!("skipping: dropbear is not installed (scripts/setup-vm-host.sh)");
        return None;
    }
    let key = SigningKey::from_bytes(&seed);
    let file = dir.join("host_key");
    std::fs::write(
        &file,
        dropbear_ed25519_key(&seed, &key.verifying_key().to_bytes()),
    )
    .unwrap();
    let address = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(DROPBEAR)
        .args(["-F", "-E", "-s", "-r"])
        .arg(&file)
        .args(["-p", &address.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(Instant::now() < deadline, "dropbear did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Server { child, address })
}

#[test]
fn the_pinned_key_passes_and_another_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = dropbear(dir.path(), [7; 32]) else {
        return;
    };
    let pinned = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
    let timeout = Duration::from_secs(5);
    for _ in 0..3 {
        check_host_key(server.address, &pinned, timeout).expect("the pinned key");
    }
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
    assert!(matches!(
        check_host_key(server.address, &other, timeout),
        Err(ProbeError::WrongHostKey)
    ));
}

#[test]
fn a_port_that_does_not_speak_ssh_is_an_error() {
    // Something that accepts and sends a banner but no key exchange.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"SSH-2.0-fake\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(800));
    });
    let err = check_host_key(address, &[1; 32], Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, ProbeError::Io(_)), "{err}");
    server.join().unwrap();
    // A server that trickles its banner a byte at a time, each within the
    // timeout, is still cut off at the probe's overall deadline.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let trickler = std::thread::spawn(move || {
        use std::io::Write;
        let (mut stream, _) = listener.accept().unwrap();
        for byte in b"SSH-2.0-slow".iter().cycle().take(40) {
            if stream.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let started = Instant::now();
    assert!(check_host_key(address, &[1; 32], Duration::from_millis(500)).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    trickler.join().unwrap();
    // Nothing listening at all.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(check_host_key(closed, &[1; 32], Duration::from_millis(300)).is_err());
}
