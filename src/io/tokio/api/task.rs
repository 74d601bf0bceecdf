//! A socket's task: it takes the socket's events in arrival order and starts their listeners,
//! which then run concurrently, up to a bound ([`Options::handlers_in_flight`]); at the bound it
//! stops taking events, their credit is not given back, and the connection is no longer read.
//!
//! Each listener's future is polled once as it starts, before the next event is taken, so what
//! a listener does before its first await (emits, joins, registering listeners) happens in the
//! order the events came, as in Node.
//!
//! [`Options::handlers_in_flight`]: crate::io::tokio::Options::handlers_in_flight

use super::namespace::{EventFn, Handlers};
use super::socket::{Ack, List, Message, Socket};
use crate::io::tokio::shared::{
    inbox, lock, panic_message, BoxFuture, SocketEvent, SocketRx, SocketTx,
};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;

/// Starts the task of a socket; returns its queue.
pub(super) fn spawn<D: Send + Sync + Clone + Default + 'static>(
    socket: Socket<D>,
    handlers: Arc<Handlers<D>>,
) -> SocketTx {
    let (tx, rx) = inbox();
    tokio::spawn(run(socket, handlers, rx));
    tx
}

/// A running listener: whether it finished without a panic.
type Running = Pin<Box<dyn Future<Output = bool> + Send>>;

/// The listeners of a socket still running after their first poll. The set is allocated when
/// the first one is, so a socket whose listeners never wait keeps none.
#[derive(Default)]
struct InFlight(Option<FuturesUnordered<Running>>);

impl InFlight {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn push(&mut self, f: Running) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(f);
    }

    /// The next to finish: whether it finished without a panic. Pending while none runs.
    async fn next(&mut self) -> bool {
        match self.0.as_mut() {
            Some(set) if !set.is_empty() => {
                let ok = set.next().await.unwrap_or(true);
                if set.is_empty() {
                    self.0 = None;
                }
                ok
            }
            _ => std::future::pending().await,
        }
    }
}

/// Not an `async fn`: its arguments would be stored twice in the future, resident per socket.
#[allow(clippy::manual_async_fn)]
fn run<D: Send + Sync + Clone + Default + 'static>(
    socket: Socket<D>,
    handlers: Arc<Handlers<D>>,
    mut rx: SocketRx,
) -> impl Future<Output = ()> + Send {
    async move {
        let bound = socket.io.shared.options.handlers_in_flight;
        let mut running = InFlight::default();
        // After a listener panicked, the socket is being disconnected: its remaining events
        // are released unhandled; its disconnect listeners still run.
        let mut healthy = true;
        for f in handlers.connection.iter().cloned() {
            let s = socket.clone();
            let run = guarded(socket.clone(), "connection handler", move || f(s));
            start(&mut running, Box::pin(run)).await;
        }
        loop {
            let event = tokio::select! {
                biased;
                ok = running.next() => {
                    healthy &= ok;
                    continue;
                }
                e = rx.recv(), if running.len() < bound => e,
            };
            let Some(e) = event else { break };
            match *e {
                SocketEvent::Message { event, ack, credit } => {
                    if !healthy {
                        continue;
                    }
                    // The event's credit goes back when its last listener is done.
                    let credit = Arc::new(credit);
                    let event = Arc::new(event);
                    // Boxed: what dispatching holds is resident only while it runs.
                    Box::pin(dispatch(
                        &socket,
                        &handlers,
                        &mut running,
                        event,
                        ack,
                        credit,
                    ))
                    .await;
                }
                SocketEvent::Upgraded => {
                    socket.state.websocket.store(true, Ordering::Relaxed);
                    let listeners = lock(&socket.state.listeners)
                        .as_ref()
                        .map(|l| l.upgrade.snapshot())
                        .unwrap_or_default();
                    for f in listeners {
                        let s = socket.clone();
                        let run = guarded(socket.clone(), "upgrade listener", move || f(s));
                        start(&mut running, Box::pin(run)).await;
                    }
                }
                SocketEvent::Disconnected { reason, rooms } => {
                    *lock(&socket.state.left) = Some(rooms);
                    socket.watch_outgoing(false);
                    Box::pin(leave(&socket, &handlers, reason)).await;
                    break;
                }
            }
        }
        // What still runs finishes: a listener awaiting an ack learns the socket is gone.
        while !running.is_empty() {
            running.next().await;
        }
        socket.watch_outgoing(false);
    }
}

/// Runs the `disconnecting` listeners (the namespace's, then the socket's), then the
/// `disconnect` ones, one after the other.
async fn leave<D: Send + Sync + Clone + Default + 'static>(
    socket: &Socket<D>,
    handlers: &Handlers<D>,
    reason: crate::DisconnectReason,
) {
    let own = lock(&socket.state.listeners)
        .as_ref()
        .map(|l| (l.disconnecting.snapshot(), l.disconnect.snapshot()))
        .unwrap_or_default();
    let phases = [
        (&handlers.disconnecting, &own.0, "disconnecting handler"),
        (&handlers.disconnect, &own.1, "disconnect handler"),
    ];
    for (nsp_level, socket_level, what) in phases {
        for f in nsp_level.iter().chain(socket_level).cloned() {
            let s = socket.clone();
            guarded(socket.clone(), what, move || f(s, reason)).await;
        }
    }
}

/// Starts one event's listeners: packet middleware, `on_any`, then the listeners of its name
/// (the namespace's, then the socket's own), or the fallback.
async fn dispatch<D: Send + Sync + Clone + Default + 'static>(
    socket: &Socket<D>,
    handlers: &Arc<Handlers<D>>,
    running: &mut InFlight,
    event: Arc<crate::packet::Event>,
    ack: Option<crate::AckRequest>,
    credit: Arc<crate::io::tokio::shared::Credit>,
) {
    let (middleware, any, own) = {
        let l = lock(&socket.state.listeners);
        match l.as_ref() {
            Some(l) => (
                l.middleware.snapshot(),
                l.any.snapshot(),
                l.events
                    .get(event.name())
                    .map(List::snapshot)
                    .unwrap_or_default(),
            ),
            None => Default::default(),
        }
    };
    let mut listeners: Vec<EventFn<D>> = handlers
        .events
        .get(event.name())
        .cloned()
        .unwrap_or_default();
    listeners.extend(own);
    if listeners.is_empty() {
        listeners.extend(handlers.fallback.clone());
    }
    // The answer's slot in the call queue, reserved before anything runs.
    let slot = match (&ack, listeners.is_empty()) {
        (Some(_), false) => Box::pin(socket.io.link.reserve()).await,
        _ => None,
    };
    let ack = ack.map(|request| {
        Arc::new(Mutex::new(Some(Ack {
            socket: socket.clone(),
            request,
            slot,
        })))
    });
    let message = Message { event, ack };
    if middleware.is_empty() {
        notify_any(socket, &any, &message.event);
        for f in listeners {
            let (s, m, credit) = (socket.clone(), message.clone(), credit.clone());
            let run = guarded(socket.clone(), "event handler", move || f(s, m));
            let run = async move {
                let ok = run.await;
                drop(credit);
                ok
            };
            start(running, Box::pin(run)).await;
        }
        return;
    }
    // With packet middleware, the event's listeners wait for its verdict: one future for all.
    let s = socket.clone();
    let whole = async move {
        for m in &middleware {
            let verdict = AssertUnwindSafe(m(s.clone(), message.event.clone()))
                .catch_unwind()
                .await;
            match verdict {
                Ok(Ok(())) => {}
                Ok(Err(rejection)) => {
                    let errors = lock(&s.state.listeners)
                        .as_ref()
                        .map(|l| l.error.snapshot())
                        .unwrap_or_default();
                    for f in errors {
                        let (s2, r) = (s.clone(), rejection.clone());
                        guarded(s.clone(), "error handler", move || f(s2, r)).await;
                    }
                    drop(credit);
                    return true;
                }
                Err(p) => {
                    report_panic(&s, "packet middleware", panic_message(&*p).to_owned()).await;
                    return false;
                }
            }
        }
        notify_any(&s, &any, &message.event);
        let all: FuturesUnordered<_> = listeners
            .into_iter()
            .map(|f| {
                let (s2, m) = (s.clone(), message.clone());
                guarded(s.clone(), "event handler", move || f(s2, m))
            })
            .collect();
        let results: Vec<bool> = all.collect().await;
        drop(credit);
        results.into_iter().all(|ok| ok)
    };
    start(running, Box::pin(whole)).await;
}

fn notify_any<D: Send + Sync + Clone + Default + 'static>(
    socket: &Socket<D>,
    any: &[super::socket::AnyFn],
    event: &crate::packet::Event,
) {
    for f in any {
        if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(|| f(event))) {
            let panic = panic_message(&*p);
            tracing::error!(panic, socket = %socket.id(), "on_any listener panicked");
        }
    }
}

/// Polls a listener once, here, so its start keeps the events' order, then lets it run with
/// the others.
async fn start(running: &mut InFlight, mut f: Running) {
    let first = std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
    if first.is_pending() {
        running.push(f);
    }
}

/// A listener, its panics contained: a panic is logged and disconnects the socket. Resolves
/// to whether it finished normally. The call itself happens on the first poll. (Not an
/// `async fn`: the future must be `'static`, apart from any borrow of the caller's.)
#[allow(clippy::manual_async_fn)]
fn guarded<D, F>(
    socket: Socket<D>,
    what: &'static str,
    call: F,
) -> impl Future<Output = bool> + Send + 'static
where
    D: Send + Sync + Clone + Default + 'static,
    F: FnOnce() -> BoxFuture<()> + Send + 'static,
{
    async move {
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(call)) {
            Ok(run) => AssertUnwindSafe(run).catch_unwind().await,
            Err(p) => Err(p),
        };
        match outcome {
            Ok(()) => true,
            Err(p) => {
                report_panic(&socket, what, panic_message(&*p).to_owned()).await;
                false
            }
        }
    }
}

async fn report_panic<D: Send + Sync + Clone + Default + 'static>(
    socket: &Socket<D>,
    what: &str,
    panic: String,
) {
    tracing::error!(
        panic,
        socket = %socket.id(),
        nsp = %socket.namespace(),
        "{what} panicked: disconnecting the socket"
    );
    let s = socket.handle;
    let disconnect = socket
        .io
        .link
        .call(Box::new(move |ctx| drop(ctx.server.disconnect(s))));
    let _ = Box::pin(disconnect).await;
}
