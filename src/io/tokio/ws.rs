//! One WebSocket's task: it reads the client's frames into the driver, and writes what the
//! driver handed over while the socket would block ([`Outbox`]).
//!
//! Reads go into a buffer per worker thread, not per connection: a connection keeps only a
//! frame a read ended inside of, so an idle one holds no buffer.

use super::credit::ConnCredit;
use super::driver::Core;
use super::driver::{Cmd, Link};
use super::outbox::{Frame, Outbox, Stream};
use crate::engine::Frame as EioFrame;
use crate::io::websocket::{close_frame, server_frame, Decoder, Incoming, OpCode};
use crate::ConnectionHandle;
use bytes::Bytes;
use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How long a closing connection waits for its last frames to be written and for the client's
/// answering close, before the socket is dropped anyway.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// The read buffer each worker thread lends its connections for one `read`.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// A frame the core produced, as the WebSocket frame every recipient shares.
pub(crate) fn wire_frame(f: &EioFrame) -> Frame {
    Arc::new(match f {
        EioFrame::Text(s) => server_frame(OpCode::Text, s.as_bytes()),
        EioFrame::Binary(b) => server_frame(OpCode::Binary, b),
    })
}

/// Whether a frame may carry (part of) an event for a handler, so must wait for credit: an
/// Engine.IO `message` whose Socket.IO type is EVENT (`2`) or BINARY_EVENT (`5`), or a binary
/// attachment. Heartbeats, acks, connects and disconnects pass without: a handler awaiting an
/// ack must still get it while its socket's queue is full.
fn needs_credit(f: &EioFrame) -> bool {
    match f {
        EioFrame::Text(s) => {
            let b = s.as_bytes();
            b.first() == Some(&b'4') && matches!(b.get(1), Some(b'2' | b'5'))
        }
        EioFrame::Binary(_) => true,
    }
}

pub(crate) struct WsParams {
    pub(crate) max_payload: usize,
    pub(crate) queue: usize,
    pub(crate) credit: Arc<ConnCredit>,
}

/// How the reading ended.
enum Ended {
    /// The client closed (its status, echoed) or broke the protocol (the status for that):
    /// the server answers with a close frame.
    Close(Option<u16>),
    /// End of stream, a socket error, or the connection's credit closed: nothing to say.
    Gone,
}

/// The socket hyper upgraded, and what it had read past the HTTP request (the client's first
/// frames, possibly).
pub(crate) fn upgraded_stream(upgraded: hyper::upgrade::Upgraded) -> Option<(Stream, Bytes)> {
    use hyper_util::rt::TokioIo;
    match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => Some((Stream::Tcp(parts.io.into_inner()), parts.read_buf)),
        #[cfg(unix)]
        Err(upgraded) => {
            // Not a TCP stream (TLS in front, a test transport): a local pair, with a task
            // copying between its far end and the upgraded stream.
            let (near, far) = tokio::net::UnixStream::pair().ok()?;
            tokio::spawn(async move {
                let mut upgraded = TokioIo::new(upgraded);
                let mut far = far;
                let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut far).await;
            });
            Some((Stream::Unix(near), Bytes::new()))
        }
        #[cfg(not(unix))]
        Err(_) => None,
    }
}

/// Runs one WebSocket until it closes. Not an `async fn`, and its closing phases boxed: the
/// future is resident per connection, so it holds only what the open connection needs.
#[allow(clippy::manual_async_fn)]
pub(crate) fn run<C: Core>(
    link: Link<C>,
    conn: ConnectionHandle,
    stream: Stream,
    early: Bytes,
    p: WsParams,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let outbox = Arc::new(Outbox::new(stream, p.queue));
        link.input(Cmd::WsOpen {
            conn,
            outbox: outbox.clone(),
        })
        .await;
        let unblock = || link.input(Cmd::Unblock(conn));
        let ended = {
            // Pinned where they are built: a move into a pinned local would store them twice.
            let mut read = std::pin::pin!(read_loop(&link, conn, &outbox, early, &p));
            let mut write = std::pin::pin!(outbox.write_loop(unblock));
            tokio::select! {
                ended = &mut read => Some(ended),
                () = &mut write => None,
            }
        };
        match ended {
            // The client closed or broke the protocol: the answering close frame, after what
            // is queued, then the end.
            Some(Ended::Close(code)) => {
                outbox.close(Arc::new(close_frame(code)));
                let write = outbox.write_loop(unblock);
                let _ = Box::pin(tokio::time::timeout(CLOSE_LINGER, write)).await;
            }
            Some(Ended::Gone) => {}
            // The core's close frame is written: the client's end of stream (it answers with
            // its own close, then ends) lets the socket go.
            None if !outbox.failed() => {
                let _ = Box::pin(tokio::time::timeout(CLOSE_LINGER, until_eof(&outbox))).await;
            }
            None => {}
        }
        link.input(Cmd::WsClosed { conn }).await;
    }
}

/// Reads and drops whatever the client still sends, until its end of stream.
async fn until_eof(outbox: &Outbox) {
    let stream = outbox.stream();
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let r = READ_BUF.with(|buf| stream.try_read(&mut buf.borrow_mut()));
        match r {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Reads the client's frames and hands each message to the driver, until the client closes.
async fn read_loop<C: Core>(
    link: &Link<C>,
    conn: ConnectionHandle,
    outbox: &Outbox,
    early: Bytes,
    p: &WsParams,
) -> Ended {
    let mut decoder = Decoder::new(p.max_payload);
    let mut incoming = Vec::new();
    let mut decoded = decoder.decode(&early, |m| incoming.push(m));
    drop(early);
    loop {
        // Taken whole, so no buffer stays with an idle connection.
        for m in std::mem::take(&mut incoming) {
            let frame = match m {
                Incoming::Text(s) => EioFrame::Text(s),
                Incoming::Binary(b) => EioFrame::Binary(b),
                Incoming::Ping(payload) => {
                    let pong = Arc::new(server_frame(OpCode::Pong, &payload));
                    if !outbox.pong(pong) {
                        return Ended::Gone;
                    }
                    continue;
                }
                Incoming::Pong => continue,
                Incoming::Close(code) => return Ended::Close(Some(code.unwrap_or(1000))),
            };
            if !deliver(link, conn, frame, &p.credit).await {
                return Ended::Gone;
            }
        }
        if let Err(e) = decoded {
            tracing::debug!(?conn, %e, "WebSocket protocol violation");
            return Ended::Close(Some(e.close_code()));
        }
        let stream = outbox.stream();
        if stream.readable().await.is_err() {
            return Ended::Gone;
        }
        let read: io::Result<()> = READ_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            let n = stream.try_read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            decoded = decoder.decode(&buf[..n], |m| incoming.push(m));
            Ok(())
        });
        match read {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ended::Gone,
        }
    }
}

/// Hands one message to the driver, after its credit if it needs one (no credit, no further
/// read: the socket's handlers are behind, and the client's writes back up into TCP).
/// `false` once the connection's credit is closed.
async fn deliver<C: Core>(
    link: &Link<C>,
    conn: ConnectionHandle,
    frame: EioFrame,
    credit: &Arc<ConnCredit>,
) -> bool {
    let credit = if needs_credit(&frame) {
        let len = match &frame {
            EioFrame::Text(s) => s.len(),
            EioFrame::Binary(b) => b.len(),
        };
        // Boxed only when it has to wait, for the same reason as `Link::input`.
        let permit = match credit.try_acquire(len) {
            Some(p) => Some(p),
            None => Box::pin(credit.acquire(len)).await,
        };
        match permit {
            Some(p) => Some(p),
            None => return false,
        }
    } else {
        None
    };
    link.input(Cmd::WsMessage {
        conn,
        frame,
        credit,
    })
    .await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Str;

    #[test]
    fn only_events_and_attachments_need_credit() {
        let text = |s: &'static str| EioFrame::Text(Str::from(s));
        assert!(needs_credit(&text("42[\"a\"]")));
        assert!(needs_credit(&text("42/chat,1[\"a\"]")));
        assert!(needs_credit(&text(
            "451-[\"a\",{\"_placeholder\":true,\"num\":0}]"
        )));
        assert!(needs_credit(&EioFrame::Binary(bytes::Bytes::from_static(
            b"x"
        ))));
        for s in ["2", "3", "3probe", "5", "40", "41", "431[]", "46", "1"] {
            assert!(!needs_credit(&text(s)), "{s}");
        }
    }
}
