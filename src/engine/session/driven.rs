//! [`Driven`]: the face a core shows its I/O adapter, shared by [`Engine`] (a bare
//! Engine.IO server) and the Socket.IO server built on it, so an adapter is written once for
//! both.

use super::{Engine, HttpAction, HttpRequest, HttpResponse, RequestError, RequestId, Transmit};
use crate::engine::Frame;
use crate::ConnectionHandle;
use bytes::Bytes;
use std::time::Instant;

/// The inputs and outputs an I/O adapter drives: HTTP requests and WebSocket frames in,
/// transmits out, time through [`poll_timeout`](Self::poll_timeout) and
/// [`handle_timeout`](Self::handle_timeout). Each method is the one of the same name on the
/// implementing type.
pub trait Driven {
    /// The checks made of a request before an `allowRequest` hook runs
    /// ([`Engine::verify`]).
    fn verify(&self, req: &HttpRequest<'_>) -> Result<(), RequestError>;
    /// An HTTP request arrived on the Engine.IO path.
    fn handle_http(&mut self, now: Instant, req: HttpRequest<'_>) -> HttpAction;
    /// The body of a POST asked for with [`HttpAction::ReadBody`].
    fn handle_post_body(&mut self, now: Instant, request: RequestId, body: Bytes) -> HttpResponse;
    /// The body of a POST was larger than the limit.
    fn handle_post_too_large(&mut self, now: Instant, request: RequestId) -> HttpResponse;
    /// A held GET or a POST being read ended without an answer.
    fn handle_request_aborted(&mut self, now: Instant, request: RequestId);
    /// An accepted WebSocket is open.
    fn handle_ws_open(&mut self, now: Instant, conn: ConnectionHandle);
    /// A WebSocket message arrived.
    fn handle_ws_message(&mut self, now: Instant, conn: ConnectionHandle, frame: Frame);
    /// A WebSocket closed.
    fn handle_ws_closed(&mut self, now: Instant, conn: ConnectionHandle);
    /// The adapter's write queue for a WebSocket is nearly full, or has room again.
    fn set_blocked(&mut self, conn: ConnectionHandle, blocked: bool);
    /// The adapter's write queue for a connection overflowed.
    fn handle_slow_consumer(&mut self, now: Instant, conn: ConnectionHandle);
    /// The next thing to write.
    fn poll_transmit(&mut self) -> Option<Transmit<'_>>;
    /// When `handle_timeout` must be called next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// Closes every connection, telling each client.
    fn shutdown(&mut self);
}

/// Implements [`Driven`] by calling the type's inherent methods of the same names (used here
/// for [`Engine`], and by the Socket.IO layer above for its `Server`). The names it uses
/// (`Driven`, `Instant`, `HttpRequest`, ...) must be in scope where it is invoked.
macro_rules! driven_by_inherent_methods {
    ($($gen:ident)? ; $ty:ty) => {
        impl$(<$gen>)? Driven for $ty {
            fn verify(&self, req: &HttpRequest<'_>) -> Result<(), RequestError> {
                <$ty>::verify(self, req)
            }
            fn handle_http(&mut self, now: Instant, req: HttpRequest<'_>) -> HttpAction {
                <$ty>::handle_http(self, now, req)
            }
            fn handle_post_body(
                &mut self,
                now: Instant,
                request: RequestId,
                body: Bytes,
            ) -> HttpResponse {
                <$ty>::handle_post_body(self, now, request, body)
            }
            fn handle_post_too_large(&mut self, now: Instant, request: RequestId) -> HttpResponse {
                <$ty>::handle_post_too_large(self, now, request)
            }
            fn handle_request_aborted(&mut self, now: Instant, request: RequestId) {
                <$ty>::handle_request_aborted(self, now, request)
            }
            fn handle_ws_open(&mut self, now: Instant, conn: ConnectionHandle) {
                <$ty>::handle_ws_open(self, now, conn)
            }
            fn handle_ws_message(&mut self, now: Instant, conn: ConnectionHandle, frame: Frame) {
                <$ty>::handle_ws_message(self, now, conn, frame)
            }
            fn handle_ws_closed(&mut self, now: Instant, conn: ConnectionHandle) {
                <$ty>::handle_ws_closed(self, now, conn)
            }
            fn set_blocked(&mut self, conn: ConnectionHandle, blocked: bool) {
                <$ty>::set_blocked(self, conn, blocked)
            }
            fn handle_slow_consumer(&mut self, now: Instant, conn: ConnectionHandle) {
                <$ty>::handle_slow_consumer(self, now, conn)
            }
            fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
                <$ty>::poll_transmit(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn shutdown(&mut self) {
                <$ty>::shutdown(self)
            }
        }
    };
}

pub(crate) use driven_by_inherent_methods;

driven_by_inherent_methods!(; Engine);
