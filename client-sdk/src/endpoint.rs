//! Where a lease's VM is, and whether to believe it.
//!
//! The assigned operator's node reports the endpoint through consensus,
//! `ssh://root@host:port?hostkey=ssh-ed25519:<base64>`: the VM's address
//! and the host key the node generated for it at boot. Every node serves it
//! at `GET /leases/{request}`. Only its blake3 hash is on-chain, attested
//! by a quorum when the lease went active. A client fetches the endpoint
//! from any node and checks it against that hash, so a lying node can send
//! a customer neither elsewhere nor to a machine in the middle: the SSH
//! client pins the attested host key (no trust on first use).
//!
//! Every part is validated before it reaches a command line: the user is a
//! plain account name, the host a DNS name or an IP address (never
//! something that starts with `-`), the port is not 0.

use crate::{errors::ClientError, Request, RequestStatus};

/// A VM's SSH endpoint, checked against the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmEndpoint {
    /// As reported, e.g. `ssh://root@203.0.113.7:22001?hostkey=ssh-ed25519:AAAA...`.
    pub url: String,
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The VM's SSH host key (raw ed25519), if the endpoint pins one.
    pub host_key: Option<[u8; 32]>,
}

impl VmEndpoint {
    /// Checks `url` against the request's on-chain state: the lease must be
    /// active and the quorum must have attested exactly this endpoint.
    pub fn verify(url: &str, request: &Request) -> Result<VmEndpoint, ClientError> {
        if request.status != RequestStatus::Active {
            return Err(ClientError::Endpoint(
                "the lease is not active: no VM to reach".into(),
            ));
        }
        if blake3::hash(url.as_bytes()).as_bytes() != &request.endpoint_hash {
            return Err(ClientError::Endpoint(format!(
                "`{url}` is not the endpoint the operators' quorum attested on-chain"
            )));
        }
        VmEndpoint::parse(url)
    }

    /// Parses `ssh://user@host:port[?hostkey=ssh-ed25519:<base64>]`,
    /// refusing anything that could be read as an option by `ssh`.
    pub fn parse(url: &str) -> Result<VmEndpoint, ClientError> {
        let bad = |why: &str| {
            ClientError::Endpoint(format!(
                "`{url}` is not an ssh://user@host:port[?hostkey=ssh-ed25519:KEY] URL: {why}"
            ))
        };
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("no ssh:// scheme"))?;
        let (address, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (user, host_port) = address.split_once('@').ok_or_else(|| bad("no user"))?;
        let (host, port) = host_port.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if !valid_user(user) {
            return Err(bad("the user must be a plain account name"));
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if !valid_host(host) {
            return Err(bad("the host must be a DNS name or an IP address"));
        }
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        let host_key = match query {
            None => None,
            Some(q) => {
                let key = q
                    .strip_prefix("hostkey=ssh-ed25519:")
                    .ok_or_else(|| bad("the only parameter is hostkey=ssh-ed25519:KEY"))?;
                Some(
                    crate::ssh::parse_public_key(&format!("ssh-ed25519 {key}"))
                        .map_err(|e| bad(&e.to_string()))?,
                )
            }
        };
        Ok(VmEndpoint {
            url: url.to_string(),
            user: user.to_string(),
            host: host.to_string(),
            port,
            host_key,
        })
    }

    /// The endpoint URL a node reports for a VM at `user@host:port` whose
    /// SSH host key is `host_key`.
    pub fn format(user: &str, host: &str, port: u16, host_key: &[u8; 32]) -> String {
        let key = crate::ssh::format_public_key(host_key);
        let b64 = key.strip_prefix("ssh-ed25519 ").unwrap_or(&key);
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        format!("ssh://{user}@{host}:{port}?hostkey=ssh-ed25519:{b64}")
    }

    /// The `known_hosts` line that pins this endpoint's host key, if it has
    /// one.
    pub fn known_hosts_line(&self) -> Option<String> {
        let key = self.host_key.as_ref()?;
        Some(format!(
            "[{}]:{} {}",
            self.host,
            self.port,
            crate::ssh::format_public_key(key)
        ))
    }
}

/// A plain account name: lower-case letters, digits, `_` and `-`, not
/// starting with `-`, at most 32 characters.
fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// An IP address, or a DNS name of letters, digits, `-` and `.` whose
/// labels do not start with `-`.
fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Fetches a lease's endpoint from a node's API (`http://host:port`) and
/// checks it against the request's on-chain state.
#[cfg(feature = "rpc")]
pub async fn fetch(
    node_api: &str,
    request_address: &anchor_lang::prelude::Pubkey,
    request: &Request,
) -> Result<VmEndpoint, ClientError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        endpoint: String,
    }
    let url = format!(
        "{}/leases/{request_address}",
        node_api.trim_end_matches('/')
    );
    let response = reqwest::get(&url)
        .await
        .map_err(|e| ClientError::Endpoint(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(ClientError::Endpoint(format!("{url}: {status} {body}")));
    }
    let answer: Answer = response
        .json()
        .await
        .map_err(|e| ClientError::Endpoint(format!("{url}: {e}")))?;
    VmEndpoint::verify(&answer.endpoint, request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VmSpec;

    fn request(status: RequestStatus, endpoint: &str) -> Request {
        Request {
            customer: Default::default(),
            request_id: 1,
            spec: VmSpec {
                vcpus: 1,
                memory_mib: 256,
                disk_gib: 1,
                region: 0,
                image_id: [1; 32],
                ssh_key: [2; 32],
            },
            price_per_second: 1,
            duration: 60,
            deposit: 60,
            paid_out: 0,
            created_at: 0,
            deadline: 10,
            status,
            assigned_operator: Default::default(),
            endpoint_hash: *blake3::hash(endpoint.as_bytes()).as_bytes(),
            lease_start: 0,
            ended_at: 0,
            fee_bps: 0,
            nonce: 0,
            bump: 0,
            escrow_bump: 0,
            provision_stake: 0,
            provision_epoch: 0,
        }
    }

    #[test]
    fn only_the_attested_endpoint_of_an_active_lease_is_believed() {
        let url = "ssh://root@203.0.113.7:22001";
        let active = request(RequestStatus::Active, url);
        let endpoint = VmEndpoint::verify(url, &active).unwrap();
        assert_eq!(
            (
                endpoint.user.as_str(),
                endpoint.host.as_str(),
                endpoint.port
            ),
            ("root", "203.0.113.7", 22001)
        );
        assert!(VmEndpoint::verify("ssh://root@198.51.100.1:22001", &active).is_err());
        assert!(VmEndpoint::verify(url, &request(RequestStatus::Open, url)).is_err());
        for bad in [
            "http://x:1",
            "ssh://x:1",
            "ssh://root@host",
            "ssh://root@host:x",
            "ssh://@h:1",
            "ssh://root@host:0",
            // Option injection through any field.
            "ssh://-oProxyCommand=touch%20x@host:22",
            "ssh://root@-oProxyCommand=x:22",
            "ssh://root@host -oProxyCommand=x:22",
            "ssh://root@ho;st:22",
            "ssh://Root@host:22",
            "ssh://root@host:22?hostkey=ssh-rsa:AAAA",
            "ssh://root@host:22?hostkey=ssh-ed25519:notbase64!",
            "ssh://root@host:22?proxy=x",
        ] {
            assert!(VmEndpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pinned_host_key_round_trips_into_known_hosts() {
        let key = [7u8; 32];
        for (host, line_host) in [
            ("203.0.113.7", "[203.0.113.7]"),
            ("::1", "[::1]"),
            ("vm.example.org", "[vm.example.org]"),
        ] {
            let url = VmEndpoint::format("root", host, 22001, &key);
            let parsed = VmEndpoint::parse(&url).unwrap();
            assert_eq!(parsed.host, host);
            assert_eq!(parsed.port, 22001);
            assert_eq!(parsed.host_key, Some(key));
            let line = parsed.known_hosts_line().unwrap();
            assert!(
                line.starts_with(&format!("{line_host}:22001 ssh-ed25519 ")),
                "{line}"
            );
            assert_eq!(
                crate::ssh::parse_public_key(line.split_once(' ').unwrap().1),
                Ok(key)
            );
        }
        assert_eq!(
            VmEndpoint::parse("ssh://root@h:22")
                .unwrap()
                .known_hosts_line(),
            None
        );
    }
}
