//! HTTP/1.1 by hand over a `TcpStream`: what a hostile or broken client sends and no HTTP library
//! will (a foreign `Host`, headers a byte at a time, a body that never comes), and the answer read
//! as it arrived.

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: String,
}

impl RawResponse {
    /// A header's value (the first one, names compared without case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `error.code` of an OpenAI-shaped error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Parses one whole response (head and body) from `bytes`.
pub fn parse(bytes: &[u8]) -> Option<RawResponse> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(RawResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// Opens a connection, sends `request` as is, and reads until the server closes (or 10 s pass).
/// Say `Connection: close` in the request so the server does.
pub async fn send(addr: SocketAddr, request: &str) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    parse(&bytes).unwrap_or_else(|| {
        panic!(
            "no whole response within 10 s, got {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Reads one response with a `Content-Length` from a connection that stays open.
pub async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return parse(&bytes[..end + 4 + length]);
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return parse(&bytes),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A `GET path` with these `Host` and extra header lines, on a connection closed after it.
pub fn get(path: &str, host: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

/// A `POST path` with this body, `Host` and extra header lines, on a connection closed after it.
pub fn post(path: &str, host: &str, extra: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
