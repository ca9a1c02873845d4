//! A minimal blocking JSON-RPC call over HTTP/1.1, for the chain's own
//! readiness probe and setup calls. Plain `std::net`, so it works the same
//! whether or not the caller is inside a tokio runtime.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use serde_json::{json, Value};

/// Largest response the probe accepts; setup calls return a few hundred bytes.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// Calls `method` on the JSON-RPC server at `addr` and returns its `result`.
pub(crate) fn call(
    addr: SocketAddr,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, String> {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("socket timeout: {e}"))?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut response)
        .map_err(|e| format!("receive: {e}"))?;
    let response = String::from_utf8(response).map_err(|_| "response is not UTF-8".to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("HTTP status `{status}`"));
    }
    let reply: Value =
        serde_json::from_str(body).map_err(|e| format!("response is not JSON: {e}"))?;
    if let Some(error) = reply.get("error") {
        return Err(format!("{method} failed: {error}"));
    }
    reply
        .get("result")
        .cloned()
        .ok_or_else(|| format!("{method}: response has no result"))
}
