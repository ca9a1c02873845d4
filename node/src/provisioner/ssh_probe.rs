//! Does the SSH server at an address hold the host key we pinned?
//!
//! A lease is attested only once its VM is usable, and "an SSH port
//! accepts connections" is not that: the forward accepts as soon as QEMU
//! binds it, and a banner proves nothing about who answers. This probe runs
//! the first half of an SSH connection (RFC 4253 version exchange and key
//! exchange, `curve25519-sha256` per RFC 8731, `ssh-ed25519` host keys),
//! checks the server's signature over the exchange hash and that the key
//! it signed with is the pinned one, then hangs up. It never authenticates
//! and never encrypts: nothing here touches the customer's session.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

const CLIENT_VERSION: &str = "SSH-2.0-dagger_probe";
const MSG_KEXINIT: u8 = 20;
const MSG_KEX_ECDH_INIT: u8 = 30;
const MSG_KEX_ECDH_REPLY: u8 = 31;
const MSG_IGNORE: u8 = 2;
const MSG_DEBUG: u8 = 4;
/// Larger packets than this are refused (RFC 4253 asks servers to cope
/// with 35 000 bytes; a key-exchange reply is a few hundred).
const MAX_PACKET: usize = 35_000;
/// Lines a server may send before its version line (RFC 4253 4.2).
const MAX_PREAMBLE_LINES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach the SSH server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server does not speak SSH 2: {0}")]
    Protocol(String),
    #[error("the server offers no curve25519-sha256 key exchange with an ssh-ed25519 host key")]
    NoCommonAlgorithm,
    #[error("the server's signature over the key exchange does not verify")]
    BadSignature,
    #[error("the server holds another host key than the one pinned")]
    WrongHostKey,
}

fn protocol(what: impl Into<String>) -> ProbeError {
    ProbeError::Protocol(what.into())
}

/// Checks that the server at `address` proves possession of the ed25519
/// host key `pinned`, all within `timeout` (a server that trickles bytes
/// cannot hold the probe longer).
pub fn check_host_key(
    address: SocketAddr,
    pinned: &[u8; 32],
    timeout: Duration,
) -> Result<(), ProbeError> {
    let deadline = Instant::now() + timeout;
    let stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_nodelay(true)?;
    handshake(&mut Bounded { stream, deadline }, pinned)
}

/// A stream whose every read and write must finish by `deadline`.
struct Bounded {
    stream: TcpStream,
    deadline: Instant,
}

impl Bounded {
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the SSH server did not finish the key exchange in time",
            ));
        }
        Ok(left)
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

fn handshake(stream: &mut (impl Read + Write), pinned: &[u8; 32]) -> Result<(), ProbeError> {
    stream.write_all(format!("{CLIENT_VERSION}\r\n").as_bytes())?;
    let server_version = read_version(stream)?;

    let client_kexinit = kexinit();
    write_packet(stream, &client_kexinit)?;
    let server_kexinit = read_packet(stream)?;
    if server_kexinit.first() != Some(&MSG_KEXINIT) {
        return Err(protocol("expected KEXINIT"));
    }
    check_algorithms(&server_kexinit)?;

    let secret = x25519_dalek::EphemeralSecret::random_from_rng(rand::rngs::OsRng);
    let client_public = x25519_dalek::PublicKey::from(&secret);
    let mut init = vec![MSG_KEX_ECDH_INIT];
    put_string(&mut init, client_public.as_bytes());
    write_packet(stream, &init)?;

    let reply = read_packet(stream)?;
    let mut r = Reader(&reply);
    if r.byte()? != MSG_KEX_ECDH_REPLY {
        return Err(protocol("expected KEX_ECDH_REPLY"));
    }
    let host_key_blob = r.string()?;
    let server_public = r.string()?;
    let signature_blob = r.string()?;

    let mut key = Reader(host_key_blob);
    if key.string()? != b"ssh-ed25519" {
        return Err(ProbeError::NoCommonAlgorithm);
    }
    let host_key: [u8; 32] = key
        .string()?
        .try_into()
        .map_err(|_| protocol("ed25519 host key of the wrong length"))?;
    let server_public: [u8; 32] = server_public
        .try_into()
        .map_err(|_| protocol("curve25519 public value of the wrong length"))?;
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(server_public));
    if !shared.was_contributory() {
        return Err(protocol("a low-order curve25519 public value"));
    }

    let mut hash_input = Vec::with_capacity(1024);
    put_string(&mut hash_input, CLIENT_VERSION.as_bytes());
    put_string(&mut hash_input, &server_version);
    put_string(&mut hash_input, &client_kexinit);
    put_string(&mut hash_input, &server_kexinit);
    put_string(&mut hash_input, host_key_blob);
    put_string(&mut hash_input, client_public.as_bytes());
    put_string(&mut hash_input, &server_public);
    put_mpint(&mut hash_input, shared.as_bytes());
    let exchange_hash = Sha256::digest(&hash_input);

    let mut sig = Reader(signature_blob);
    if sig.string()? != b"ssh-ed25519" {
        return Err(protocol("signature of another type than ssh-ed25519"));
    }
    let signature: [u8; 64] = sig
        .string()?
        .try_into()
        .map_err(|_| protocol("ed25519 signature of the wrong length"))?;
    let verifying = VerifyingKey::from_bytes(&host_key).map_err(|_| ProbeError::BadSignature)?;
    verifying
        .verify(&exchange_hash, &Signature::from_bytes(&signature))
        .map_err(|_| ProbeError::BadSignature)?;
    if &host_key != pinned {
        return Err(ProbeError::WrongHostKey);
    }
    Ok(())
}

/// The server's version line without its line end.
fn read_version(stream: &mut impl Read) -> Result<Vec<u8>, ProbeError> {
    for _ in 0..MAX_PREAMBLE_LINES {
        let mut line = Vec::new();
        loop {
            let mut byte = [0u8];
            stream.read_exact(&mut byte)?;
            if byte[0] == b'\n' {
                break;
            }
            if line.len() >= 255 {
                return Err(protocol("a line longer than 255 bytes before the version"));
            }
            line.push(byte[0]);
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.starts_with(b"SSH-") {
            if !(line.starts_with(b"SSH-2.0-") || line.starts_with(b"SSH-1.99-")) {
                return Err(protocol("not SSH protocol version 2"));
            }
            return Ok(line);
        }
    }
    Err(protocol("no version line"))
}

fn kexinit() -> Vec<u8> {
    let mut out = vec![MSG_KEXINIT];
    let cookie: [u8; 16] = rand::random();
    out.extend_from_slice(&cookie);
    // Ciphers and MACs are only listed so that a server finds a match: the
    // probe hangs up before either is used.
    let ciphers = "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr,aes128-gcm@openssh.com";
    let macs = "hmac-sha2-256,hmac-sha2-512,hmac-sha1";
    for list in [
        "curve25519-sha256,curve25519-sha256@libssh.org",
        "ssh-ed25519",
        ciphers,
        ciphers,
        macs,
        macs,
        "none",
        "none",
        "",
        "",
    ] {
        put_string(&mut out, list.as_bytes());
    }
    out.push(0); // first_kex_packet_follows
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

fn check_algorithms(server_kexinit: &[u8]) -> Result<(), ProbeError> {
    let mut r = Reader(&server_kexinit[1..]);
    r.take(16)?;
    let kex = r.string()?;
    let host_keys = r.string()?;
    let offers = |list: &[u8], name: &str| list.split(|b| *b == b',').any(|n| n == name.as_bytes());
    let kex_ok = offers(kex, "curve25519-sha256") || offers(kex, "curve25519-sha256@libssh.org");
    if kex_ok && offers(host_keys, "ssh-ed25519") {
        Ok(())
    } else {
        Err(ProbeError::NoCommonAlgorithm)
    }
}

fn write_packet(stream: &mut impl Write, payload: &[u8]) -> Result<(), ProbeError> {
    // Unencrypted packets are padded to a multiple of 8 with at least 4 bytes.
    let mut padding = 8 - (4 + 1 + payload.len()) % 8;
    if padding < 4 {
        padding += 8;
    }
    let length = 1 + payload.len() + padding;
    let mut packet = Vec::with_capacity(4 + length);
    packet.extend_from_slice(&(length as u32).to_be_bytes());
    packet.push(padding as u8);
    packet.extend_from_slice(payload);
    packet.extend(std::iter::repeat_n(0u8, padding));
    stream.write_all(&packet)?;
    Ok(())
}

/// The next packet's payload, skipping IGNORE and DEBUG messages.
fn read_packet(stream: &mut impl Read) -> Result<Vec<u8>, ProbeError> {
    loop {
        let mut length = [0u8; 4];
        stream.read_exact(&mut length)?;
        let length = u32::from_be_bytes(length) as usize;
        if !(5..=MAX_PACKET).contains(&length) {
            return Err(protocol(format!("a packet of {length} bytes")));
        }
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body)?;
        let padding = body[0] as usize;
        if padding < 4 || padding + 1 >= length {
            return Err(protocol("bad packet padding"));
        }
        let payload = body[1..length - padding].to_vec();
        if !matches!(payload.first(), Some(&MSG_IGNORE) | Some(&MSG_DEBUG)) {
            return Ok(payload);
        }
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// `bytes` read as an unsigned big-endian number, as an SSH mpint.
fn put_mpint(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = &bytes[start..];
    if digits.first().is_some_and(|b| b & 0x80 != 0) {
        out.extend_from_slice(&(digits.len() as u32 + 1).to_be_bytes());
        out.push(0);
        out.extend_from_slice(digits);
    } else {
        put_string(out, digits);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProbeError> {
        if self.0.len() < n {
            return Err(protocol("a truncated message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn byte(&mut self) -> Result<u8, ProbeError> {
        Ok(self.take(1)?[0])
    }
    fn string(&mut self) -> Result<&'a [u8], ProbeError> {
        let length = u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        self.take(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpints_follow_rfc_4251() {
        let encode = |bytes: &[u8]| {
            let mut out = Vec::new();
            put_mpint(&mut out, bytes);
            out
        };
        assert_eq!(encode(&[0, 0]), [0, 0, 0, 0]);
        assert_eq!(encode(&[0, 0x12, 0x34]), [0, 0, 0, 2, 0x12, 0x34]);
        assert_eq!(encode(&[0x80]), [0, 0, 0, 2, 0, 0x80]);
    }

    #[test]
    fn packets_round_trip_and_are_padded_to_blocks() {
        for len in 0..40 {
            let payload: Vec<u8> = (0..len as u8).map(|b| b.wrapping_add(7)).collect();
            let mut wire = Vec::new();
            write_packet(&mut wire, &[&[MSG_KEXINIT][..], &payload].concat()).unwrap();
            assert_eq!(wire.len() % 8, 0);
            let back = read_packet(&mut wire.as_slice()).unwrap();
            assert_eq!(back[1..], payload[..]);
        }
    }

    #[test]
    fn hostile_servers_get_errors_not_hangs_or_panics() {
        // Garbage instead of a version, endless preamble, huge packets,
        // truncated replies: each is an error.
        let cases: Vec<Vec<u8>> = vec![
            b"HTTP/1.1 200 OK\r\n".repeat(40),
            [b"x".repeat(300), b"\n".to_vec()].concat(),
            b"SSH-1.5-old\r\n".to_vec(),
            [b"SSH-2.0-x\r\n".as_slice(), &[0xff, 0xff, 0xff, 0xff]].concat(),
            [b"SSH-2.0-x\r\n".as_slice(), &[0, 0, 0, 12, 20, 1, 2]].concat(),
        ];
        for server in cases {
            let mut io = Duplex {
                input: std::io::Cursor::new(server),
            };
            assert!(handshake(&mut io, &[0; 32]).is_err());
        }
    }

    /// Reads from canned bytes, swallows writes.
    struct Duplex {
        input: std::io::Cursor<Vec<u8>>,
    }
    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
