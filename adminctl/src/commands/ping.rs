//! `adminctl ping [URL]`: exit 0 when a FreeRouter process answers 2xx — a container healthcheck
//! that needs no curl. Plain HTTP/1.0 over a std TCP stream; it opens no database and reads no
//! configuration, so it stays cheap enough to run every few seconds.

use clap::Args;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Args)]
pub struct PingOpts {
    /// The URL to GET (plain http), e.g. the gateway's `/ready` or the maintainer's `/health`.
    #[arg(default_value = "http://127.0.0.1:8000/ready")]
    pub url: String,
    /// Seconds allowed for connecting, and again for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_s: u64,
}

/// Why a ping failed.
#[derive(Debug)]
pub enum PingError {
    /// Not an `http://host[:port][/path]` URL.
    BadUrl(String),
    /// The host did not resolve, refused, or timed out.
    Connect(String, std::io::Error),
    /// The connection broke while asking or reading.
    Io(std::io::Error),
    /// Something answered that is not HTTP.
    NotHttp,
    /// An HTTP answer other than 2xx.
    Status(u16),
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingError::BadUrl(url) => write!(f, "`{url}` is not an http://host[:port][/path] URL"),
            PingError::Connect(addr, e) => write!(f, "cannot connect to {addr}: {e}"),
            PingError::Io(e) => write!(f, "connection broke: {e}"),
            PingError::NotHttp => write!(f, "the answer is not HTTP"),
            PingError::Status(code) => write!(f, "answered HTTP {code}"),
        }
    }
}

impl std::error::Error for PingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PingError::Connect(_, e) | PingError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// `http://host[:port][/path]` split into the address to dial, the Host header and the path.
fn split_url(url: &str) -> Result<(String, String, String), PingError> {
    let bad = || PingError::BadUrl(url.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let addr = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_string(), path.to_string()))
}

/// GETs the URL; `Ok(status)` for a 2xx answer.
pub fn ping(url: &str, timeout: Duration) -> Result<u16, PingError> {
    let (addr, host, path) = split_url(url)?;
    let resolved = addr
        .to_socket_addrs()
        .map_err(|e| PingError::Connect(addr.clone(), e))?
        .next()
        .ok_or_else(|| {
            PingError::Connect(
                addr.clone(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            )
        })?;
    let mut stream = TcpStream::connect_timeout(&resolved, timeout)
        .map_err(|e| PingError::Connect(addr.clone(), e))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(PingError::Io)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(PingError::Io)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(PingError::Io)?;
    // The status line is all we need; read until it is complete (or the answer ends).
    let mut head = Vec::new();
    let mut buf = [0_u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(PingError::Io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status = status_of(&head)?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(PingError::Status(status))
    }
}

/// The status code of `HTTP/1.x NNN …`.
fn status_of(head: &[u8]) -> Result<u16, PingError> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| PingError::NotHttp)?;
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => {
            code.parse().map_err(|_| PingError::NotHttp)
        }
        _ => Err(PingError::NotHttp),
    }
}

pub fn run(opts: &PingOpts) -> anyhow::Result<()> {
    let status = ping(&opts.url, Duration::from_secs(opts.timeout_s.max(1)))?;
    println!("{} answered {status}", opts.url);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering `reply` to the first connection.
    fn serve_once(reply: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0_u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        format!("http://{addr}/ready")
    }

    #[test]
    fn a_2xx_answer_is_healthy_and_anything_else_is_not() {
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!(ping(&ok, Duration::from_secs(2)).unwrap(), 200);
        let down = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(matches!(
            ping(&down, Duration::from_secs(2)),
            Err(PingError::Status(503))
        ));
        let garbage = serve_once("SSH-2.0-OpenSSH\r\n");
        assert!(matches!(
            ping(&garbage, Duration::from_secs(2)),
            Err(PingError::NotHttp)
        ));
    }

    #[test]
    fn a_closed_port_is_a_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/health");
        assert!(matches!(
            ping(&url, Duration::from_secs(2)),
            Err(PingError::Connect(..))
        ));
    }

    #[test]
    fn urls_are_split_into_address_host_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:9091/health").unwrap(),
            (
                "127.0.0.1:9091".into(),
                "127.0.0.1:9091".into(),
                "/health".into()
            )
        );
        assert_eq!(
            split_url("http://gateway").unwrap(),
            ("gateway:80".into(), "gateway".into(), "/".into())
        );
        assert_eq!(split_url("http://[::1]:8000/").unwrap().0, "[::1]:8000");
        for bad in ["https://x/", "127.0.0.1:8000", "http:///x", "http://u@h/"] {
            assert!(matches!(split_url(bad), Err(PingError::BadUrl(_))), "{bad}");
        }
    }
}
