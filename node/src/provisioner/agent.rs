//! The node's side of the guest agent: a line protocol over a virtio-serial
//! port (`dagger.agent`) whose host end is a Unix socket in the VM's
//! directory, which only the node can open. It is how a VM booted before
//! anyone paid for it (a pooled VM) receives its customer's key and its
//! host key: never through the guest network, which a neighbour could
//! reach.
//!
//! Requests and answers, one ASCII line each:
//!
//! | node sends                      | guest answers            |
//! |---------------------------------|--------------------------|
//! | `ping <n>`                      | `pong <n>`               |
//! | `key <authorized_keys line>`    | `ok key`                 |
//! | `hostkey <base64 dropbear key>` | `ok hostkey`             |
//! | `start`                         | `started` (SSH listens)  |
//!
//! The guest may answer `error <why>` to any of them. After `start` the
//! agent stops listening, so the port carries nothing once the tenant holds
//! the VM; the node never acts on anything a guest says except these
//! answers, read with a bounded length and a deadline.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::{Duration, Instant},
};

/// Longest answer line read from a guest.
const MAX_LINE: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("guest agent socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the guest agent did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the guest agent refused `{command}`: {answer}")]
    Refused { command: String, answer: String },
    #[error("the guest agent sent a line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("the guest agent closed its port")]
    Closed,
}

/// A connection to one VM's agent.
pub struct Agent {
    stream: UnixStream,
    /// Bytes read past the last full line.
    buffered: Vec<u8>,
    pings: u64,
}

impl Agent {
    /// Connects to the agent socket QEMU serves, waiting for QEMU to create
    /// it until `deadline`.
    pub fn connect(socket: &Path, deadline: Instant) -> Result<Agent, AgentError> {
        loop {
            match UnixStream::connect(socket) {
                Ok(stream) => {
                    return Ok(Agent {
                        stream,
                        buffered: Vec::new(),
                        pings: 0,
                    })
                }
                Err(err) if Instant::now() >= deadline => return Err(err.into()),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Pings until the guest answers (it has booted and its agent runs) or
    /// `deadline` passes; `alive` is asked between tries so that a guest
    /// whose QEMU died is not waited for.
    pub fn wait_ready(
        &mut self,
        deadline: Instant,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Duration, AgentError> {
        let started = Instant::now();
        loop {
            self.pings += 1;
            let expect = format!("pong {}", self.pings);
            let wait =
                Duration::from_millis(250).min(deadline.saturating_duration_since(Instant::now()));
            match self.call(&format!("ping {}", self.pings), &expect, wait) {
                Ok(()) => return Ok(started.elapsed()),
                Err(AgentError::Timeout(_)) if Instant::now() < deadline && alive() => {}
                Err(AgentError::Timeout(_)) => return Err(AgentError::Timeout(started.elapsed())),
                Err(other) => return Err(other),
            }
        }
    }

    /// Gives the guest its customer's key and its SSH host key and starts
    /// its SSH server.
    pub fn hand_over(
        &mut self,
        authorized_key: &str,
        dropbear_host_key: &[u8],
        timeout: Duration,
    ) -> Result<(), AgentError> {
        use base64::Engine;
        let authorized_key = authorized_key.trim();
        if authorized_key.contains(['\n', '\r']) {
            return Err(AgentError::Refused {
                command: "key".into(),
                answer: "a key of more than one line".into(),
            });
        }
        self.call(&format!("key {authorized_key}"), "ok key", timeout)?;
        let host = base64::engine::general_purpose::STANDARD.encode(dropbear_host_key);
        self.call(&format!("hostkey {host}"), "ok hostkey", timeout)?;
        self.call("start", "started", timeout)
    }

    /// Sends `command` and reads lines until `expect` (earlier answers to
    /// timed-out pings are skipped); an `error` line is a refusal.
    fn call(&mut self, command: &str, expect: &str, timeout: Duration) -> Result<(), AgentError> {
        let deadline = Instant::now() + timeout;
        self.stream
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        self.stream.write_all(format!("{command}\n").as_bytes())?;
        loop {
            let line = self.read_line(deadline)?;
            if line == expect {
                return Ok(());
            }
            if let Some(why) = line.strip_prefix("error") {
                let verb = command.split(' ').next().unwrap_or_default();
                return Err(AgentError::Refused {
                    command: verb.to_string(),
                    answer: why.trim().to_string(),
                });
            }
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String, AgentError> {
        loop {
            if let Some(end) = self.buffered.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]);
                return Ok(text.trim_end_matches('\r').to_string());
            }
            if self.buffered.len() > MAX_LINE {
                return Err(AgentError::TooLong);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AgentError::Timeout(Duration::ZERO));
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 256];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(AgentError::Closed),
                Ok(n) => self.buffered.extend_from_slice(&chunk[..n]),
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(AgentError::Timeout(Duration::ZERO))
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// The guest half, as a POSIX shell function (busybox `ash` and Debian's
/// `dash` both run it). `$1` is where dropbear's host key goes.
pub const GUEST_AGENT: &str = r#"
dagger_agent() {
  hostkey_file=$1
  port=
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = dagger.agent ] && port=/dev/${p##*/}
  done
  [ -n "$port" ] || { echo "dagger agent: no dagger.agent port" >&2; return 1; }
  exec 3<>"$port"
  while :; do
    # While the node is not connected the port reads as empty.
    if ! IFS= read -r line <&3; then sleep 0.1; continue; fi
    verb=${line%% *}
    arg=${line#* }
    case "$verb" in
      ping) echo "pong $arg" >&3 ;;
      key)
        mkdir -p /root/.ssh && chmod 700 /root/.ssh
        printf '%s\n' "$arg" > /root/.ssh/authorized_keys
        chmod 600 /root/.ssh/authorized_keys
        echo "ok key" >&3 ;;
      hostkey)
        mkdir -p "${hostkey_file%/*}"
        if printf '%s' "$arg" | base64 -d > "$hostkey_file" 2>/dev/null; then
          chmod 600 "$hostkey_file"; echo "ok hostkey" >&3
        else
          echo "error bad host key" >&3
        fi ;;
      start)
        if dropbear -r "$hostkey_file" -s -p 22; then
          echo started >&3; exec 3>&-; return 0
        fi
        echo "error dropbear did not start" >&3 ;;
      *) echo "error unknown request" >&3 ;;
    esac
  done
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake guest on the other end of a socket pair.
    fn pair() -> (Agent, UnixStream) {
        let (node, guest) = UnixStream::pair().unwrap();
        (
            Agent {
                stream: node,
                buffered: Vec::new(),
                pings: 0,
            },
            guest,
        )
    }

    #[test]
    fn a_late_pong_is_skipped_and_a_refusal_is_an_error() {
        let (mut agent, mut guest) = pair();
        guest.write_all(b"pong 0\npong 1\n").unwrap();
        let took = agent
            .wait_ready(Instant::now() + Duration::from_secs(2), || true)
            .unwrap();
        assert!(took < Duration::from_secs(2));
        guest.write_all(b"error no space\n").unwrap();
        let err = agent
            .hand_over("ssh-ed25519 AAAA x", b"key", Duration::from_secs(1))
            .unwrap_err();
        assert!(
            matches!(err, AgentError::Refused { ref command, ref answer } if command == "key" && answer == "no space"),
            "{err}"
        );
    }

    #[test]
    fn a_silent_flooding_or_closing_guest_is_bounded() {
        let (mut agent, guest) = pair();
        let err = agent
            .wait_ready(Instant::now() + Duration::from_millis(600), || true)
            .unwrap_err();
        assert!(matches!(err, AgentError::Timeout(_)), "{err}");

        let (mut agent, mut guest2) = pair();
        guest2.write_all(&[b'x'; 4 * MAX_LINE]).unwrap();
        let err = agent
            .wait_ready(Instant::now() + Duration::from_secs(2), || true)
            .unwrap_err();
        assert!(matches!(err, AgentError::TooLong), "{err}");

        drop(guest);
        let (mut agent, guest3) = pair();
        drop(guest3);
        assert!(agent
            .wait_ready(Instant::now() + Duration::from_secs(2), || true)
            .is_err());
        // A key with a line break could add a second authorized key.
        let (mut agent, _guest) = pair();
        assert!(matches!(
            agent.hand_over("ssh-ed25519 A\nssh-ed25519 B", b"k", Duration::from_secs(1)),
            Err(AgentError::Refused { .. })
        ));
    }
}
