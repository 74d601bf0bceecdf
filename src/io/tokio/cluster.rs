//! The cluster side of the async API: other nodes' `serverSideEmit` as messages with an
//! optional ack, and this node's requests (`serverSideEmit` with and without acks,
//! `fetchSockets`, `allRooms`) as futures. Outside a cluster each behaves as on a single Node
//! server: no one hears a server-side emit, requests answer with this node alone.

use super::api::SocketIo;
use super::driver::ClusterResult;
use super::shared::CallError;
use crate::packet::{self, Payload};
use crate::{ClusterError, ClusterReply, RequestHandle, Server, ServerSideAck};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;

/// Another node's `serverSideEmit` to a namespace of this node.
pub struct ServerSideMessage<D: Send + Sync + Clone + Default + 'static> {
    pub(crate) io: SocketIo<D>,
    pub(crate) nsp: String,
    pub(crate) event: packet::Event,
    pub(crate) ack: Option<ServerSideAck>,
}

impl<D: Send + Sync + Clone + Default + 'static> ServerSideMessage<D> {
    /// The event name.
    pub fn name(&self) -> &str {
        self.event.name()
    }

    /// The namespace it was emitted to.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The arguments, deserialized (binary as `bytes::Bytes` where asked for).
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.event.args()
    }

    /// The event itself.
    pub fn event(&self) -> &packet::Event {
        &self.event
    }

    /// Whether the emitting node waits for an answer (`serverSideEmitWithAck`).
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Answers the emitting node with one value; only the first answer counts, as in the
    /// reference (this one consumes the message). Nothing happens if no answer was asked.
    pub fn ack<T: Serialize + ?Sized>(self, answer: &T) -> Result<(), CallError> {
        let Some(token) = self.ack else {
            return Ok(());
        };
        let value = crate::cluster::value::to_value(answer).map_err(|e| {
            CallError::from(crate::Error::Encode(crate::packet::EncodeError::Json(
                serde::ser::Error::custom(e),
            )))
        })?;
        self.io.link.try_call(Box::new(move |ctx| {
            let _ = ctx.server.server_side_ack(token, &value);
        }))
    }
}

/// The answers of the other nodes to a `serverSideEmit` with acks, each as `[answer]`.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerSideResponses {
    /// The answers that came, in arrival order.
    pub responses: Vec<Payload>,
    /// Set when some did not come in time (the reference's error).
    pub error: Option<ClusterError>,
}

impl<D: Send + Sync + Clone + Default + 'static> SocketIo<D> {
    /// Emits an event to the other nodes' servers (`serverSideEmit`): their
    /// [`on_server_side`](super::Namespace::on_server_side) listeners get it; this node's
    /// do not. Never waits: refused with [`CallError::Full`] when the call queue is full.
    pub fn server_side_emit<T: Serialize + Send + 'static>(
        &self,
        nsp: &str,
        event: &str,
        args: T,
    ) -> Result<(), CallError> {
        let (nsp, event) = (nsp.to_owned(), event.to_owned());
        self.link.try_call(Box::new(move |ctx| {
            let Some(n) = ctx.server.namespace(&nsp) else {
                return;
            };
            if let Err(e) = ctx.server.server_side_emit(n, &event, &args) {
                tracing::warn!(%e, "serverSideEmit refused");
            }
        }))
    }

    /// `serverSideEmitWithAck`: resolves with one answer per other node, or at the cluster's
    /// `requests_timeout` with those that came and the reference's error.
    pub async fn server_side_emit_with_ack<T: Serialize + Send + 'static>(
        &self,
        nsp: &str,
        event: &str,
        args: T,
    ) -> Result<ServerSideResponses, CallError> {
        let (nsp, event) = (nsp.to_owned(), event.to_owned());
        let (reply, error) = self
            .request(move |server, now| {
                let n = server
                    .namespace(&nsp)
                    .ok_or(crate::Error::UnknownNamespace(nsp))?;
                server.server_side_emit_with_ack(now, n, &event, &args)
            })
            .await?;
        let ClusterReply::Responses(responses) = reply else {
            return Err(CallError::Stopped);
        };
        Ok(ServerSideResponses { responses, error })
    }

    /// `adapter.allRooms()`: every room of the namespace on every node, sorted, socket-id
    /// rooms included.
    pub async fn all_rooms(
        &self,
        nsp: &str,
    ) -> Result<Result<Vec<String>, ClusterError>, CallError> {
        let nsp = nsp.to_owned();
        let (reply, error) = self
            .request(move |server, now| {
                let n = server
                    .namespace(&nsp)
                    .ok_or(crate::Error::UnknownNamespace(nsp))?;
                server.all_rooms(now, n)
            })
            .await?;
        match (reply, error) {
            (_, Some(e)) => Ok(Err(e)),
            (ClusterReply::Rooms(rooms), None) => Ok(Ok(rooms)),
            _ => Err(CallError::Stopped),
        }
    }

    /// Starts a request in the driver and waits for its reply.
    pub(crate) async fn request(
        &self,
        start: impl FnOnce(&mut Server<D>, std::time::Instant) -> Result<RequestHandle, crate::Error>
            + Send
            + 'static,
    ) -> Result<ClusterResult, CallError> {
        let (tx, rx) = oneshot::channel::<Result<ClusterResult, crate::Error>>();
        self.link
            .call(Box::new(move |ctx| {
                let now = ctx.now();
                match start(&mut ctx.server, now) {
                    // Its reply may be queued already (a single node): it is dispatched after
                    // this call, so the sender is in place in time.
                    Ok(h) => {
                        ctx.cluster_replies.insert(h, tx);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            }))
            .await?;
        match rx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(CallError::from(e)),
            Err(_) => Err(CallError::Stopped),
        }
    }
}
