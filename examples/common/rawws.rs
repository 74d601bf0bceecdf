//! A lean WebSocket client for the load generators' receivers: the upgrade by hand, then frames
//! read straight out of one buffer per connection.
//!
//! A receiver only reads text frames and now and then answers a heartbeat, yet through
//! tokio-tungstenite it cost the generator about 11 µs per delivery, more than the server it
//! measures; on a shared machine that CPU is taken from the server and shows in every latency
//! sample. This client does what a receiver needs and no more: unmasked, unfragmented server
//! frames in (what RFC 6455 lets a server send, and all roomcast and Node send), masked text
//! frames out.

use super::BoxError;
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RFC 6455's sample key, and the accept value it calls for (section 1.3).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// A client frame must be masked; any key will do.
const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x8e];
/// The largest frame accepted (a load generator's events are far smaller).
const MAX_FRAME: usize = 1 << 24;
/// The largest HTTP response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One WebSocket connection, client side.
pub struct RawWs {
    tcp: TcpStream,
    buf: BytesMut,
    read_buffer: usize,
}

/// What [`RawWs::recv`] read.
pub enum Incoming {
    Text(Bytes),
    /// The connection ended, and why.
    Ended(String),
}

impl RawWs {
    /// Connects and upgrades `GET /socket.io/?EIO=4&transport=websocket` on `addr`.
    pub async fn connect(addr: &str, read_buffer: usize) -> Result<RawWs, BoxError> {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await?;
        let read_buffer = read_buffer.max(1024);
        let mut buf = BytesMut::with_capacity(read_buffer);
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = &buf[..end];
                if !head.starts_with(b"HTTP/1.1 101") {
                    let line = head.split(|&c| c == b'\r').next().unwrap_or_default();
                    return Err(
                        format!("upgrade refused: {}", String::from_utf8_lossy(line)).into(),
                    );
                }
                if !head.windows(ACCEPT.len()).any(|w| w == ACCEPT) {
                    return Err("upgrade without the right Sec-WebSocket-Accept".into());
                }
                // What follows the head is the first frames.
                buf.advance(end + 4);
                return Ok(RawWs {
                    tcp,
                    buf,
                    read_buffer,
                });
            }
            if buf.len() > MAX_HEAD {
                return Err("HTTP response head too long".into());
            }
            buf.reserve(1024);
            if tcp.read_buf(&mut buf).await? == 0 {
                return Err("closed during the upgrade".into());
            }
        }
    }

    /// The next text message. Pings are answered and other frames skipped on the way.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            match self.frame() {
                Ok(Some((0x1, payload))) => return Incoming::Text(payload),
                Ok(Some((0x8, payload))) => {
                    return Incoming::Ended(format!("close frame {:?}", &payload[..]))
                }
                Ok(Some((0x9, payload))) => {
                    if let Err(e) = self.send(0xa, &payload).await {
                        return Incoming::Ended(format!("sending a pong: {e}"));
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    if self.buf.capacity() - self.buf.len() < 1024 {
                        self.buf.reserve(self.read_buffer);
                    }
                    match self.tcp.read_buf(&mut self.buf).await {
                        Ok(0) => return Incoming::Ended("closed".into()),
                        Ok(_) => {}
                        Err(e) => return Incoming::Ended(format!("error: {e}")),
                    }
                }
                Err(e) => return Incoming::Ended(e),
            }
        }
    }

    /// Takes one whole frame (its opcode and payload) off the buffer, if it is all there.
    fn frame(&mut self) -> Result<Option<(u8, Bytes)>, String> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x80 == 0 {
            return Err("a fragmented frame".into());
        }
        if b[1] & 0x80 != 0 {
            return Err("a masked frame from the server".into());
        }
        let (head, len) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (4, usize::from(u16::from_be_bytes([b[2], b[3]]))),
            127 if b.len() >= 10 => {
                let mut n = [0; 8];
                n.copy_from_slice(&b[2..10]);
                (
                    10,
                    usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                )
            }
            126 | 127 => return Ok(None),
            n => (2, usize::from(n)),
        };
        if len > MAX_FRAME {
            return Err(format!("a {len}-byte frame"));
        }
        if b.len() < head + len {
            self.buf.reserve(head + len - b.len());
            return Ok(None);
        }
        let op = b[0] & 0x0f;
        self.buf.advance(head);
        Ok(Some((op, self.buf.split_to(len).freeze())))
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(0x1, text.as_bytes()).await
    }

    /// Sends a close frame (1000) and lets the connection go.
    pub async fn close(mut self) {
        let _ = self.send(0x8, &1000u16.to_be_bytes()).await;
    }

    async fn send(&mut self, op: u8, payload: &[u8]) -> io::Result<()> {
        let mut f = Vec::with_capacity(payload.len() + 14);
        f.push(0x80 | op);
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&MASK);
        f.extend(payload.iter().zip(MASK.iter().cycle()).map(|(c, m)| c ^ m));
        self.tcp.write_all(&f).await
    }
}
