//! One WebSocket: a reader feeding the driver, a writer draining the connection's queue.

use super::credit::ConnCredit;
use super::driver::Core;
use super::driver::{Cmd, Link};
use crate::engine::Frame as EioFrame;
use crate::{ConnectionHandle, Str};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A frame the core produced, as a WebSocket message. Built as a raw frame from the shared
/// buffer: no copy and no second UTF-8 check per recipient.
fn to_message(f: EioFrame) -> Message {
    match f {
        EioFrame::Text(s) => Message::Frame(Frame::message(
            s.into_bytes(),
            OpCode::Data(Data::Text),
            true,
        )),
        EioFrame::Binary(b) => Message::Frame(Frame::message(b, OpCode::Data(Data::Binary), true)),
    }
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

pub(crate) async fn run<C, S>(link: Link<C>, conn: ConnectionHandle, stream: S, p: WsParams)
where
    C: Core,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let WsParams {
        max_payload,
        queue,
        credit,
    } = p;
    // Small buffers: clients mostly listen, and a server holds many of them (tungstenite fills
    // the whole read buffer on first use, so its size is resident per connection). The write
    // buffer is flushed per batch anyway.
    let config = WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload));
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<EioFrame>(queue.max(4));
    link.input(Cmd::WsOpen { conn, writer: tx }).await;

    let writer_link = link.clone();
    let writer = tokio::spawn(async move {
        let low_water = queue / 4;
        while let Some(first) = rx.recv().await {
            let was_full = rx.len() >= queue - queue / 4;
            // Everything already queued goes out with one flush.
            let mut batch = Some(first);
            while let Some(f) = batch.take().or_else(|| rx.try_recv().ok()) {
                if sink.feed(to_message(f)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
            if was_full && rx.len() < low_water {
                writer_link.input(Cmd::Unblock(conn)).await;
            }
        }
        // The core closed the connection: say goodbye properly.
        let _ = sink.close().await;
    });

    while let Some(msg) = stream.next().await {
        let frame = match msg {
            Ok(Message::Text(t)) => match Str::from_utf8(t.into()) {
                Ok(s) => EioFrame::Text(s),
                Err(_) => break,
            },
            Ok(Message::Binary(b)) => EioFrame::Binary(b),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue, // pings and pongs: tungstenite answers pings itself
        };
        // No credit, no further read: the socket's handlers are behind, and the client's
        // writes back up into TCP.
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
                None => break,
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
    }
    link.input(Cmd::WsClosed { conn }).await;
    // The writer ends when the core drops its queue; don't keep a dead socket's writer alive.
    writer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

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
