//! The HTTP side of Engine.IO: requests as the core sees them, and its answers.

use bytes::Bytes;

/// The HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: a handshake, a long-polling read, or a WebSocket upgrade request.
    Get,
    /// `POST`: a long-polling write.
    Post,
    /// Anything else.
    Other,
}

/// An HTTP request to the Engine.IO path, as the adapter hands it to the core. Built with
/// [`get`](Self::get), [`post`](Self::post) or [`new`](Self::new) (more fields may come).
///
/// ```
/// use roomcast::{HttpRequest, Method};
/// let upgrade = HttpRequest::get("EIO=4&transport=websocket").websocket();
/// assert!(upgrade.websocket);
/// let post = HttpRequest::post("EIO=4&transport=polling&sid=x", Some(12));
/// assert_eq!((post.method, post.content_length), (Method::Post, Some(12)));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HttpRequest<'a> {
    /// The method.
    pub method: Method,
    /// The raw query string, without the `?` (`EIO=4&transport=polling&sid=…`).
    pub query: &'a str,
    /// Whether the request asks to upgrade to WebSocket (`Upgrade: websocket`).
    pub websocket: bool,
    /// The `Content-Length` of a POST, when given: an oversized body is refused before it is read.
    pub content_length: Option<u64>,
    /// What the socket handshake of a new session keeps of its HTTP request (headers, address,
    /// ...); give it with a request that opens a session (no `sid`), at no cost otherwise.
    pub info: Option<&'a RequestInfo>,
}

/// What Node's `socket.handshake` holds about the HTTP request that opened a session. The
/// core has no clock or sockets of its own: the adapter fills it in.
///
/// Kept for every session, so held in one buffer: the target, the address, then each header
/// as `name:value` lines (HTTP allows no line break in either).
///
/// ```
/// use roomcast::RequestInfo;
/// let mut info = RequestInfo::new(
///     "/socket.io/?EIO=4&transport=polling",
///     Some("127.0.0.1"),
///     [("host", "example.com"), ("x-a", "1"), ("x-a", "2")],
/// );
/// info.unix_ms = Some(1_796_148_032_210);
/// assert_eq!(info.url(), "/socket.io/?EIO=4&transport=polling");
/// assert_eq!(info.address(), Some("127.0.0.1"));
/// assert_eq!(info.headers().count(), 3);
/// assert_eq!(info.header("X-A").as_deref(), Some("1, 2"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestInfo {
    text: String,
    url_len: u32,
    /// The address's length plus one, 0 without one.
    address_len: u32,
    /// Whether the connection was TLS.
    pub secure: bool,
    /// When the request arrived, in ms since the Unix epoch (`handshake.issued`).
    pub unix_ms: Option<u64>,
}

impl RequestInfo {
    /// A request for `url` (path and query: `/socket.io/?EIO=4&transport=polling`), from
    /// `address` (as Node prints it: `127.0.0.1`, `::1`), with `headers` (names in lowercase,
    /// in arrival order; line breaks in a name or value are replaced with spaces, a `:` in a
    /// name too).
    pub fn new<'h>(
        url: &str,
        address: Option<&str>,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    ) -> Self {
        let clean = |s: &str, colon: bool| -> String {
            s.chars()
                .map(|c| match c {
                    '\n' | '\r' => ' ',
                    ':' if colon => ' ',
                    c => c,
                })
                .collect()
        };
        let url = clean(url, false);
        let mut text = url.clone();
        let mut address_len = 0;
        if let Some(a) = address {
            let a = clean(a, false);
            text.push_str(&a);
            address_len = u32::try_from(a.len() + 1).unwrap_or(u32::MAX);
        }
        for (name, value) in headers {
            text.push('\n');
            text.push_str(&clean(name, true));
            text.push(':');
            text.push_str(&clean(value, false));
        }
        text.shrink_to_fit();
        RequestInfo {
            url_len: u32::try_from(url.len()).unwrap_or(u32::MAX),
            text,
            address_len,
            secure: false,
            unix_ms: None,
        }
    }

    /// The request target: path and query.
    pub fn url(&self) -> &str {
        self.text.get(..self.url_len as usize).unwrap_or_default()
    }

    /// The peer's address.
    pub fn address(&self) -> Option<&str> {
        let start = self.url_len as usize;
        let len = (self.address_len as usize).checked_sub(1)?;
        self.text.get(start..start + len)
    }

    /// The headers, names in lowercase, in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        let start = self.url_len as usize + (self.address_len as usize).saturating_sub(1);
        self.text
            .get(start..)
            .unwrap_or_default()
            .split('\n')
            .skip(1)
            .filter_map(|line| line.split_once(':'))
    }

    /// The query string, parsed as Node's `querystring` does (`+` a space, `%XX` a byte, the
    /// first of repeated keys).
    pub fn query(&self) -> Vec<(String, String)> {
        query_pairs(self.url().split_once('?').map_or("", |(_, q)| q))
    }

    /// Every header once, in first-arrival order, repeated ones joined with `, ` as Node's
    /// `req.headers` has them.
    pub fn joined_headers(&self) -> Vec<(&str, String)> {
        let mut out: Vec<(&str, String)> = Vec::new();
        for (name, value) in self.headers() {
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => {
                    v.push_str(", ");
                    v.push_str(value);
                }
                None => out.push((name, value.to_owned())),
            }
        }
        out
    }

    /// A header's value, by name in any case; repeated headers joined with `, ` as Node does.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut values = self
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v);
        let first = values.next()?;
        Some(values.fold(first.to_owned(), |acc, v| acc + ", " + v))
    }
}

/// A query string as Node's `querystring.parse` reads it: `+` is a space, `%XX` a byte;
/// a repeated key keeps its first value.
fn query_pairs(q: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (unescape(k), unescape(v));
        if !out.iter().any(|(n, _)| *n == k) {
            out.push((k, v));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let hex = |b: &u8| {
        char::from(*b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                // Not an escape: kept as it is, as `querystring` does.
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl<'a> HttpRequest<'a> {
    /// A request with `method` and the raw `query` string.
    pub fn new(method: Method, query: &'a str) -> Self {
        HttpRequest {
            method,
            query,
            websocket: false,
            content_length: None,
            info: None,
        }
    }

    /// A GET with the raw `query` string.
    pub fn get(query: &'a str) -> Self {
        Self::new(Method::Get, query)
    }

    /// A POST with the raw `query` string and its `Content-Length`, if given.
    pub fn post(query: &'a str, content_length: Option<u64>) -> Self {
        HttpRequest {
            content_length,
            ..Self::new(Method::Post, query)
        }
    }

    /// The same request, asking to upgrade to WebSocket (`Upgrade: websocket`).
    pub fn websocket(mut self) -> Self {
        self.websocket = true;
        self
    }

    /// The same request, with what a new session keeps of it.
    pub fn with_info(mut self, info: &'a RequestInfo) -> Self {
        self.info = Some(info);
        self
    }
}

/// Identifies a request the core answers later: a held long-polling GET, or a POST whose
/// body the adapter is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code: 200, 400, 403, 413 or 503.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
    /// The request was refused with one of the reference's error codes: what the reference
    /// reports as a `connection_error` (the adapter tells the application).
    pub error: Option<RequestError>,
}

impl HttpResponse {
    pub(crate) fn ok(content_type: &'static str, body: Bytes) -> Self {
        HttpResponse {
            status: 200,
            content_type,
            body,
            error: None,
        }
    }

    /// 503: the server cannot open a session now (no randomness for its id).
    pub(crate) fn unavailable() -> Self {
        HttpResponse {
            status: 503,
            content_type: "text/plain; charset=UTF-8",
            body: Bytes::from_static(b"Service Unavailable"),
            error: None,
        }
    }

    pub(crate) fn payload_too_large() -> Self {
        HttpResponse {
            status: 413,
            content_type: "text/plain; charset=UTF-8",
            body: Bytes::from_static(b"Payload Too Large"),
            error: None,
        }
    }
}

/// What the adapter must do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum HttpAction {
    /// Answer at once.
    Respond(HttpResponse),
    /// A POST the core accepts: read its body, at most [`Limits::max_payload`](crate::Limits)
    /// bytes, and pass it to [`Engine::handle_post_body`](crate::engine::session::Engine::handle_post_body);
    /// or call [`Engine::handle_request_aborted`](crate::engine::session::Engine::handle_request_aborted).
    ReadBody(RequestId),
    /// A long-polling GET with nothing to send yet: hold it. Its answer comes out of
    /// [`Engine::poll_transmit`](crate::engine::session::Engine::poll_transmit) as a
    /// [`Transmit::PollResponse`](crate::Transmit::PollResponse).
    Hold(RequestId),
    /// Complete the WebSocket handshake, then call
    /// [`Engine::handle_ws_open`](crate::engine::session::Engine::handle_ws_open) (or
    /// [`Engine::handle_ws_closed`](crate::engine::session::Engine::handle_ws_closed) if it failed).
    AcceptWebSocket(crate::ConnectionHandle),
    /// Complete the WebSocket handshake, then close that WebSocket at once: it asked to upgrade
    /// a session that has upgraded or is upgrading. The session itself is untouched (the
    /// reference's behaviour: the client sees the WebSocket open and close, not an HTTP error).
    AcceptAndClose,
}

/// The reference server's request errors, codes 0–5, answered with a JSON body
/// `{"code":…,"message":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `transport` is missing or names no transport the server offers.
    #[error("Transport unknown")]
    UnknownTransport = 0,
    /// `sid` names no open session.
    #[error("Session ID unknown")]
    UnknownSid = 1,
    /// A handshake must be a GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod = 2,
    /// The request does not fit the session (transport mismatch, overlapping requests,
    /// malformed payload).
    #[error("Bad request")]
    BadRequest = 3,
    /// The application refused the handshake.
    #[error("Forbidden")]
    Forbidden = 4,
    /// `EIO` is not `4`.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion = 5,
}

impl RequestError {
    /// The numeric code of the reference server.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The HTTP status: 403 for [`Forbidden`](Self::Forbidden), else 400.
    pub fn status(self) -> u16 {
        match self {
            RequestError::Forbidden => 403,
            _ => 400,
        }
    }

    /// The response the reference server gives.
    pub fn response(self) -> HttpResponse {
        self.response_with_message(&self.to_string())
    }

    /// The same response with another message in its body (the reference's `allowRequest`
    /// may give one: `{"code":4,"message":"<its message>"}`).
    pub fn response_with_message(self, message: &str) -> HttpResponse {
        let body = serde_json::json!({ "code": self.code(), "message": message }).to_string();
        HttpResponse {
            status: self.status(),
            content_type: "application/json",
            body: Bytes::from(body),
            error: Some(self),
        }
    }
}

/// The transports a server accepts (the reference's `transports` option; default both,
/// `["polling", "websocket"]`). A request for a transport left out is refused with
/// [`RequestError::UnknownTransport`] (`{"code":0,"message":"Transport unknown"}`), and the
/// handshake offers an upgrade to WebSocket only if WebSocket is accepted.
///
/// ```
/// use roomcast::{Config, Transports};
/// let mut config = Config::default();
/// assert_eq!(config.transports, Transports::ALL);
/// config.transports = Transports::WEBSOCKET; // the reference's `transports: ["websocket"]`
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transports {
    /// HTTP long-polling (`polling`).
    pub polling: bool,
    /// WebSocket (`websocket`).
    pub websocket: bool,
}

impl Transports {
    /// Both, the reference default.
    pub const ALL: Transports = Transports {
        polling: true,
        websocket: true,
    };
    /// Long-polling only (`["polling"]`).
    pub const POLLING: Transports = Transports {
        polling: true,
        websocket: false,
    };
    /// WebSocket only (`["websocket"]`).
    pub const WEBSOCKET: Transports = Transports {
        polling: false,
        websocket: true,
    };

    /// Whether the transport named `name` (`polling`, `websocket`) is accepted.
    pub fn allows(self, name: &str) -> bool {
        match name {
            "polling" => self.polling,
            "websocket" => self.websocket,
            _ => false,
        }
    }
}

impl Default for Transports {
    fn default() -> Self {
        Self::ALL
    }
}

/// The Engine.IO query parameters of a request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Query<'a> {
    pub(crate) eio: Option<&'a str>,
    pub(crate) transport: Option<&'a str>,
    pub(crate) sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    pub(crate) fn parse(query: &'a str) -> Self {
        let mut q = Query::default();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "EIO" => q.eio = Some(v),
                "transport" => q.transport = Some(v),
                "sid" => q.sid = Some(v),
                _ => {}
            }
        }
        q
    }
}
