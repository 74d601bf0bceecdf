//! What the driver and the application API both speak: the events a socket's task receives,
//! the middleware's signature, reply shapes and errors. It depends on neither, so the driver
//! never needs to know the application API above it.

use super::credit::CreditPermit;
use crate::packet::{self, Payload};
use crate::{DisconnectReason, SocketHandle};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One socket's answer to a broadcast with acks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Reply {
    /// The socket that answered.
    pub socket: SocketHandle,
    /// Its public id (empty if it was gone by the time the broadcast ended).
    pub id: crate::Str,
    /// The arguments it answered with.
    pub args: Payload,
}

/// Replies of a broadcast with acks.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Replies {
    /// Each answer of this node's sockets, with its socket, in arrival order.
    pub local: Vec<Reply>,
    /// In a cluster, each answer of another node's sockets (its first argument, as `[arg]`).
    pub remote: Vec<Payload>,
    /// How many sockets were reached, over every node that reported.
    pub expected: usize,
    /// Whether the timeout ended the wait (the reference's "operation has timed out").
    pub timed_out: bool,
}

impl Replies {
    /// Every answer, this node's first, as the arguments `[arg, ...]` each client acked with.
    pub fn all(&self) -> impl Iterator<Item = &Payload> {
        self.local.iter().map(|r| &r.args).chain(&self.remote)
    }
}

/// What the connection middleware of a namespace decides on.
pub(crate) struct ConnectInfo<D> {
    /// The socket-to-be's handshake.
    pub(crate) handshake: crate::Handshake,
    /// The connection asking.
    pub(crate) conn: crate::ConnectionHandle,
    /// The namespace's name (for a child of a parent namespace, the name asked for).
    pub(crate) nsp: String,
    /// For a socket that connection state recovery restores, its data.
    pub(crate) restored: Option<D>,
}

/// The connection middleware of a namespace (its `use` chain): the socket's data, or why not.
pub(crate) type AuthFn<D> =
    Arc<dyn Fn(ConnectInfo<D>) -> BoxFuture<Result<D, Rejection>> + Send + Sync>;

/// An event's part of its connection's input credit: held from the moment it is read until its
/// handler has finished. `None` for an event that arrived past the credit (a long-polling POST
/// holds its answer back for those).
pub(crate) type Credit = Option<CreditPermit>;

/// What the driver tells a socket's task.
pub(crate) enum SocketEvent {
    Message {
        event: packet::Event,
        /// Set when the client waits for an answer.
        ack: Option<crate::AckRequest>,
        credit: Credit,
    },
    /// Its connection moved from long-polling to WebSocket.
    Upgraded,
    /// The socket left its namespace; `rooms` are those it was in (its own id first).
    Disconnected {
        reason: DisconnectReason,
        rooms: Vec<crate::Str>,
    },
}

/// A socket task's queue, the driver's end. Unbounded as a queue, bounded by credit: every
/// message in it holds its part of its connection's credit
/// ([`Options::socket_queue`](super::Options), and `socket_queue_bytes`), except at most one
/// long-polling POST's worth, whose answer waits until they fit.
///
/// Not a tokio channel: one of those costs most of a kilobyte per socket (cache-padded ends,
/// a first block of 32 slots) whether or not anything is queued; this one is a hundred bytes,
/// and its queue is freed whenever it empties. Events are boxed, so what a socket's task holds
/// while a handler runs is a pointer.
pub(crate) struct SocketTx(Arc<Inbox>);

/// A socket task's queue, the task's end.
pub(crate) struct SocketRx(Arc<Inbox>);

struct Inbox {
    queue: Mutex<Queued>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Queued {
    events: VecDeque<Box<SocketEvent>>,
    sender_gone: bool,
    receiver_gone: bool,
}

/// A socket task's queue: the driver's end, and the task's.
pub(crate) fn inbox() -> (SocketTx, SocketRx) {
    let inbox = Arc::new(Inbox {
        queue: Mutex::default(),
        wake: tokio::sync::Notify::new(),
    });
    (SocketTx(inbox.clone()), SocketRx(inbox))
}

impl SocketTx {
    /// Queues an event; gives it back if the task has ended.
    pub(crate) fn send(&self, e: Box<SocketEvent>) -> Result<(), Box<SocketEvent>> {
        let mut q = lock(&self.0.queue);
        if q.receiver_gone {
            return Err(e);
        }
        q.events.push_back(e);
        drop(q);
        self.0.wake.notify_one();
        Ok(())
    }
}

impl Drop for SocketTx {
    fn drop(&mut self) {
        lock(&self.0.queue).sender_gone = true;
        self.0.wake.notify_one();
    }
}

impl SocketRx {
    /// The next event; `None` once the driver's end is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<Box<SocketEvent>> {
        loop {
            {
                let mut q = lock(&self.0.queue);
                if let Some(e) = q.events.pop_front() {
                    if q.events.is_empty() {
                        q.events = VecDeque::new();
                    }
                    return Some(e);
                }
                if q.sender_gone {
                    return None;
                }
            }
            // A send between the check and this wait leaves a permit: nothing is missed.
            self.0.wake.notified().await;
        }
    }
}

impl Drop for SocketRx {
    fn drop(&mut self) {
        let mut q = lock(&self.0.queue);
        q.receiver_gone = true;
        // Their credit goes back now, not when the driver's end goes.
        let events = std::mem::take(&mut q.events);
        drop(q);
        drop(events);
    }
}

/// Why a connection to a namespace is refused: the client's `connect_error` gets
/// `message` as its message and `data` as its data.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The message (`err.message` on the client).
    pub message: String,
    /// Extra data (`err.data` on the client).
    pub data: Option<serde_json::Value>,
}

impl Rejection {
    /// A refusal with a message and no data.
    pub fn new(message: impl Into<String>) -> Self {
        Rejection {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data to the refusal.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// Why an application call did not reach the driver.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The driver's call queue ([`Options::call_queue`](super::Options)) is full: the call was
    /// not queued. Retry after yielding, or slow down.
    #[error("the driver's call queue is full")]
    Full,
    /// The driver task has stopped (its runtime is shutting down).
    #[error("the server has stopped")]
    Stopped,
    /// The core refused the call (an argument could not be encoded...).
    #[error(transparent)]
    Core(#[from] crate::Error),
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A panic's message, for the log.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "(not a string)"
    }
}
