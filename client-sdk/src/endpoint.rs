//! Where a lease's VM is, and whether to believe it.
//!
//! The assigned operator's node reports the endpoint (`ssh://root@host:port`)
//! through consensus; every node serves it at `GET /leases/{request}`. Only
//! its blake3 hash is on-chain, attested by a quorum when the lease went
//! active. A client fetches the endpoint from any node and checks it
//! against that hash, so a lying node cannot send a customer elsewhere.

use crate::{errors::ClientError, Request, RequestStatus};

/// A VM's SSH endpoint, checked against the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmEndpoint {
    /// As reported, e.g. `ssh://root@203.0.113.7:22001`.
    pub url: String,
    pub user: String,
    pub host: String,
    pub port: u16,
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

    /// Parses `ssh://user@host:port`.
    pub fn parse(url: &str) -> Result<VmEndpoint, ClientError> {
        let bad = || ClientError::Endpoint(format!("`{url}` is not an ssh://user@host:port URL"));
        let rest = url.strip_prefix("ssh://").ok_or_else(bad)?;
        let (user, host_port) = rest.split_once('@').ok_or_else(bad)?;
        let (host, port) = host_port.rsplit_once(':').ok_or_else(bad)?;
        if user.is_empty() || host.is_empty() {
            return Err(bad());
        }
        Ok(VmEndpoint {
            url: url.to_string(),
            user: user.to_string(),
            host: host.to_string(),
            port: port.parse().map_err(|_| bad())?,
        })
    }
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
        ] {
            assert!(VmEndpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
