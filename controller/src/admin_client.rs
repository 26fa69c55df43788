//! A small blocking client of the admin API, for `beamer ctl`: HTTP/1.1
//! over one TCP connection per request, JSON bodies.

use crate::api;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a call to the admin API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The controller could not be reached.
    #[error("cannot reach the controller's admin API at {addr}: {error}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
    /// The controller answered with an error.
    #[error("{error} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The controller's explanation.
        error: String,
    },
    /// The answer was not HTTP/JSON as expected.
    #[error("unexpected answer from the controller: {0}")]
    Protocol(String),
}

/// The admin API of a controller at `addr` (`host:port`).
#[derive(Debug, Clone)]
pub struct AdminClient {
    addr: String,
    timeout: Duration,
}

impl AdminClient {
    /// A client for `addr`.
    pub fn new(addr: impl Into<String>) -> Self {
        AdminClient {
            addr: addr.into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<api::Status, ClientError> {
        self.call("GET", "/v1/status", None::<&()>)
    }

    /// Adds a server to `vip` (id or address).
    pub fn add_server(
        &self,
        vip: &str,
        req: &api::AddServer,
    ) -> Result<api::CommandResult, ClientError> {
        self.call("POST", &format!("/v1/vips/{vip}/servers"), Some(req))
    }

    /// Removes a server.
    pub fn remove_server(&self, vip: &str, dip: &str) -> Result<api::CommandResult, ClientError> {
        self.call(
            "DELETE",
            &format!("/v1/vips/{vip}/servers/{dip}"),
            None::<&()>,
        )
    }

    /// Drains a server.
    pub fn drain(&self, vip: &str, dip: &str) -> Result<api::CommandResult, ClientError> {
        self.call(
            "POST",
            &format!("/v1/vips/{vip}/servers/{dip}/drain"),
            None::<&()>,
        )
    }

    /// Undoes a drain.
    pub fn activate(&self, vip: &str, dip: &str) -> Result<api::CommandResult, ClientError> {
        self.call(
            "POST",
            &format!("/v1/vips/{vip}/servers/{dip}/activate"),
            None::<&()>,
        )
    }

    /// Changes a server's weight.
    pub fn set_weight(
        &self,
        vip: &str,
        dip: &str,
        weight: u32,
    ) -> Result<api::CommandResult, ClientError> {
        self.call(
            "PUT",
            &format!("/v1/vips/{vip}/servers/{dip}/weight"),
            Some(&api::SetWeight { weight }),
        )
    }

    fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        let body = body
            .map(|b| serde_json::to_string(b).expect("API types serialize"))
            .unwrap_or_default();
        let (status, text) = self.request(method, path, &body)?;
        if !(200..300).contains(&status) {
            let error = serde_json::from_str::<api::ApiError>(&text)
                .map(|e| e.error)
                .unwrap_or(text);
            return Err(ClientError::Api { status, error });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Protocol(format!("{e}: {text}")))
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Result<(u16, String), ClientError> {
        let connect_err = |error| ClientError::Connect {
            addr: self.addr.clone(),
            error,
        };
        let addr = self
            .addr
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| {
                connect_err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no address",
                ))
            })?;
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(connect_err)?;
        s.set_read_timeout(Some(self.timeout))
            .map_err(connect_err)?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).map_err(connect_err)?;
        s.write_all(body.as_bytes()).map_err(connect_err)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(connect_err)?;
        parse_response(&raw)
    }
}

/// Splits an HTTP/1.1 response into status and body (plain, with
/// Content-Length, or chunked).
fn parse_response(raw: &[u8]) -> Result<(u16, String), ClientError> {
    let bad = |m: &str| ClientError::Protocol(m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not text"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let mut body = &raw[end + 4..];
    let bytes = if chunked {
        let mut out = Vec::new();
        loop {
            let nl = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("truncated chunk"))?;
            let size_text = std::str::from_utf8(&body[..nl]).map_err(|_| bad("chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("chunk size"))?;
            body = &body[nl + 2..];
            if size == 0 {
                break;
            }
            if body.len() < size {
                return Err(bad("truncated chunk"));
            }
            out.extend_from_slice(&body[..size]);
            body = body.get(size + 2..).unwrap_or(&[]);
        }
        out
    } else {
        match length {
            Some(n) if n <= body.len() => body[..n].to_vec(),
            Some(_) => return Err(bad("truncated body")),
            None => body.to_vec(),
        }
    };
    String::from_utf8(bytes)
        .map(|b| (status, b))
        .map_err(|_| bad("body is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, "{}".into()));
        let chunked =
            b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (409, "{\"a\":1}".into()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err());
        assert!(parse_response(b"garbage").is_err());
    }
}
