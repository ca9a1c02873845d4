//! Cluster URLs the way the Solana CLI takes them: a moniker (`l`, `d`, `t`,
//! `m` or their long names) or an `http(s)://` URL, with the websocket URL
//! derived from it unless given explicitly.

use anchor_client::Cluster;
use url::Url;

/// Why a `--url` / `--ws` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterUrlError {
    #[error(
        "`{0}` is neither a cluster moniker (l/localhost, d/devnet, t/testnet, m/mainnet-beta) \
         nor an http:// or https:// URL"
    )]
    NotAnRpcUrl(String),
    #[error("`{0}` is not a ws:// or wss:// URL")]
    NotAWebsocketUrl(String),
    #[error("cannot derive a websocket port from {0}: the port is already the highest one")]
    NoWebsocketPort(String),
}

/// Expands a moniker to its RPC URL; other input is returned unchanged.
pub fn expand_moniker(input: &str) -> &str {
    match input {
        "l" | "localhost" => "http://127.0.0.1:8899",
        "d" | "devnet" => "https://api.devnet.solana.com",
        "t" | "testnet" => "https://api.testnet.solana.com",
        "m" | "mainnet-beta" => "https://api.mainnet-beta.solana.com",
        other => other,
    }
}

/// The websocket URL the Solana CLI derives from an RPC URL: `http` becomes
/// `ws`, `https` becomes `wss`, and an explicit port moves up by one (8899 →
/// 8900), because validators serve PubSub on the next port.
pub fn websocket_url(rpc_url: &str) -> Result<String, ClusterUrlError> {
    let url = parse_http(rpc_url)?;
    let mut ws = url.clone();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    // Switching between these "special" schemes always succeeds.
    let _ = ws.set_scheme(scheme);
    if let Some(port) = url.port() {
        let next = port
            .checked_add(1)
            .ok_or_else(|| ClusterUrlError::NoWebsocketPort(rpc_url.to_string()))?;
        let _ = ws.set_port(Some(next));
    }
    Ok(ws.to_string())
}

/// Resolves `--url` (moniker or URL) and an optional `--ws` override into an
/// anchor-client [`Cluster`].
pub fn resolve(url: &str, ws: Option<&str>) -> Result<Cluster, ClusterUrlError> {
    let rpc = expand_moniker(url.trim());
    parse_http(rpc)?;
    let ws = match ws {
        Some(ws) => {
            let parsed =
                Url::parse(ws).map_err(|_| ClusterUrlError::NotAWebsocketUrl(ws.to_string()))?;
            if !matches!(parsed.scheme(), "ws" | "wss") {
                return Err(ClusterUrlError::NotAWebsocketUrl(ws.to_string()));
            }
            ws.to_string()
        }
        None => websocket_url(rpc)?,
    };
    Ok(Cluster::Custom(rpc.to_string(), ws))
}

fn parse_http(rpc_url: &str) -> Result<Url, ClusterUrlError> {
    match Url::parse(rpc_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(ClusterUrlError::NotAnRpcUrl(rpc_url.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(cluster: Cluster) -> (String, String) {
        (cluster.url().to_string(), cluster.ws_url().to_string())
    }

    #[test]
    fn monikers_expand_like_the_solana_cli() {
        for (moniker, rpc, ws) in [
            ("l", "http://127.0.0.1:8899", "ws://127.0.0.1:8900/"),
            ("localhost", "http://127.0.0.1:8899", "ws://127.0.0.1:8900/"),
            (
                "d",
                "https://api.devnet.solana.com",
                "wss://api.devnet.solana.com/",
            ),
            (
                "devnet",
                "https://api.devnet.solana.com",
                "wss://api.devnet.solana.com/",
            ),
            (
                "t",
                "https://api.testnet.solana.com",
                "wss://api.testnet.solana.com/",
            ),
            (
                "testnet",
                "https://api.testnet.solana.com",
                "wss://api.testnet.solana.com/",
            ),
            (
                "m",
                "https://api.mainnet-beta.solana.com",
                "wss://api.mainnet-beta.solana.com/",
            ),
            (
                "mainnet-beta",
                "https://api.mainnet-beta.solana.com",
                "wss://api.mainnet-beta.solana.com/",
            ),
        ] {
            assert_eq!(
                urls(resolve(moniker, None).unwrap()),
                (rpc.to_string(), ws.to_string()),
                "{moniker}"
            );
        }
    }

    #[test]
    fn websocket_url_is_derived_or_overridden() {
        assert_eq!(
            urls(resolve("http://10.0.0.1:7000", None).unwrap()),
            ("http://10.0.0.1:7000".into(), "ws://10.0.0.1:7001/".into())
        );
        assert_eq!(
            websocket_url("https://rpc.example.com/key").unwrap(),
            "wss://rpc.example.com/key"
        );
        assert_eq!(
            urls(resolve("https://rpc.example.com", Some("wss://ws.example.com")).unwrap()).1,
            "wss://ws.example.com"
        );
        assert_eq!(
            websocket_url("http://h:65535"),
            Err(ClusterUrlError::NoWebsocketPort("http://h:65535".into()))
        );
    }

    #[test]
    fn bad_urls_are_refused_with_a_hint() {
        for bad in ["mainnet", "ftp://x", "127.0.0.1:8899", ""] {
            let error = resolve(bad, None).unwrap_err();
            assert!(matches!(error, ClusterUrlError::NotAnRpcUrl(_)), "{bad}");
            assert!(error.to_string().contains("moniker"), "{error}");
        }
        assert!(matches!(
            resolve("l", Some("http://127.0.0.1:8900")),
            Err(ClusterUrlError::NotAWebsocketUrl(_))
        ));
    }
}
