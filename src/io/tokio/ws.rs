//! One WebSocket: a reader feeding the driver, a writer draining the connection's queue.

use super::driver::Cmd;
use super::SocketIo;
use crate::engine::Frame as EioFrame;
use crate::{ConnectionHandle, Str};
use futures_util::{SinkExt, StreamExt};
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

pub(crate) async fn run<D, S>(
    io: SocketIo<D>,
    conn: ConnectionHandle,
    stream: S,
    max_payload: usize,
    queue: usize,
) where
    D: Send + Sync + Clone + Default + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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
    io.send(Cmd::WsOpen { conn, writer: tx });

    let writer_io = io.clone();
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
                writer_io.send(Cmd::Unblock(conn));
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
        io.send(Cmd::WsMessage { conn, frame });
    }
    io.send(Cmd::WsClosed { conn });
    // The writer ends when the core drops its queue; don't keep a dead socket's writer alive.
    writer.abort();
}
