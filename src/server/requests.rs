//! This node's requests to the cluster: `fetchSockets`, `allRooms` and `serverSideEmit` (with
//! and without acks), and its answers to other nodes' `serverSideEmit`. Each request is
//! published once with a fresh id and ends in one [`Event::ClusterReply`]: when every node
//! answered (the transport reports the node count), or at the timeout with what came. On a
//! single node (no cluster, or `local`) it ends at once with this node's part, as on a single
//! Node server.

use super::broadcast::Broadcast;
use super::event::{ClusterError, ClusterReply, Event, RequestHandle, ServerSideAck};
use super::{Error, Server};
use crate::cluster::adapter::Protocol;
use crate::cluster::classic::{self, Options};
use crate::cluster::requests::{Collected, Finished};
use crate::cluster::value::ClusterArgs;
use crate::handle::NamespaceId;
use crate::packet::{Encoded, Payload};
use rmpv::Value;
use serde::Serialize;
use std::time::Instant;

impl<D: Serialize> Broadcast<'_, D> {
    /// `fetchSockets` over the cluster: the selected sockets of every node (of this one only
    /// if [`local`](Self::local)), with their ids, rooms, data and handshake. The answer is an
    /// [`Event::ClusterReply`] with [`ClusterReply::Sockets`].
    pub fn fetch_sockets(self, now: Instant) -> Result<RequestHandle, Error> {
        let outgoing = self.outgoing();
        let nsp = self.nsp;
        let mut except: Vec<String> = self.except.iter().map(|r| r.to_string()).collect();
        // From a socket (`socket.broadcast`, `socket.to(...)`): the sender is left out, as
        // Node's operator leaves out its own room.
        if let Some(sid) = self.exclude.and_then(|s| self.server.sid(s)) {
            except.push(sid.to_owned());
        }
        let opts = Options {
            rooms: self.rooms.iter().map(|r| r.to_string()).collect(),
            except,
            ..Options::default()
        };
        let server = self.server;
        let local = server.local_sockets(nsp, &opts, super::cluster::data_value::<D>);
        if outgoing.is_none() {
            return Ok(server.finish_at_once(ClusterReply::Sockets(local)));
        }
        server.start_request(now, nsp, Collected::Fetch(local), |uid, request_id| {
            classic::Request::Fetch {
                uid,
                request_id,
                opts,
            }
        })
    }
}

impl<D> Server<D> {
    /// `adapter.allRooms()`: every room of the namespace on every node, socket-id rooms
    /// included. The answer is an [`Event::ClusterReply`] with [`ClusterReply::Rooms`].
    pub fn all_rooms(&mut self, now: Instant, nsp: NamespaceId) -> Result<RequestHandle, Error> {
        if self
            .cluster
            .as_deref()
            .is_some_and(|c| c.config.protocol != Protocol::Classic)
        {
            // `ClusterAdapter` has no `allRooms`.
            return Err(Error::ClusterUnsupported("allRooms"));
        }
        let local = self.local_rooms(nsp);
        if self.cluster.is_none() {
            let mut rooms = local;
            rooms.sort();
            rooms.dedup();
            return Ok(self.finish_at_once(ClusterReply::Rooms(rooms)));
        }
        let local = Collected::AllRooms(local.into_iter().collect());
        self.start_request(now, nsp, local, |uid, request_id| {
            classic::Request::AllRooms { uid, request_id }
        })
    }

    /// Emits an event to the other nodes of the cluster (`serverSideEmit` without an ack):
    /// each reports it as an [`Event::ServerSideEmit`]; this node does not. Outside a cluster
    /// it reaches no one, as on a single Node server.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &mut self,
        nsp: NamespaceId,
        event: &str,
        args: &T,
    ) -> Result<(), Error> {
        if self.cluster.is_none() {
            return Ok(());
        }
        let data = self.emit_data(nsp, event, args)?;
        // Without randomness for this namespace's uid, the emit is refused, not dropped.
        self.adapter_ready(nsp)?;
        self.queue(nsp, None, |a| {
            a.request(&classic::Request::ServerSideEmit {
                uid: a.uid.clone(),
                request_id: None,
                data,
            })
        });
        Ok(())
    }

    /// `serverSideEmitWithAck`: every other node's listeners get the event with an
    /// [`ack`](Event::ServerSideEmit); their answers come in one [`Event::ClusterReply`] with
    /// [`ClusterReply::Responses`]. Outside a cluster: at once, with no answers.
    pub fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: NamespaceId,
        event: &str,
        args: &T,
    ) -> Result<RequestHandle, Error> {
        if self.cluster.is_none() {
            return Ok(self.finish_at_once(ClusterReply::Responses(Vec::new())));
        }
        let data = self.emit_data(nsp, event, args)?;
        let local = Collected::ServerSideEmit(Vec::new());
        self.start_request(now, nsp, local, |uid, request_id| {
            classic::Request::ServerSideEmit {
                uid,
                request_id: Some(request_id),
                data,
            }
        })
    }

    /// Answers another node's `serverSideEmit`; the token is used up, so only the first
    /// answer goes, as in the reference. `answer` is the callback's one argument.
    pub fn server_side_ack<T: Serialize + ?Sized>(
        &mut self,
        ack: ServerSideAck,
        answer: &T,
    ) -> Result<(), Error> {
        let data = crate::cluster::value::to_value(answer)
            .map_err(|e| crate::packet::EncodeError::Json(serde::ser::Error::custom(e)))?;
        let response = classic::Response::ServerSideEmit {
            request_id: ack.request_id,
            data,
        };
        self.respond(ack.nsp, Some(&ack.requester), &response);
        Ok(())
    }

    /// `[event, ...args]` as it travels, checked like any emit.
    fn emit_data<T: Serialize + ?Sized>(
        &mut self,
        nsp: NamespaceId,
        event: &str,
        args: &T,
    ) -> Result<Vec<Value>, Error> {
        let name = self.live_nsp_name(nsp)?;
        let encoded = Encoded::event(&name, None, event, args)?;
        super::cluster::event_data(&encoded).ok_or(Error::Encode(crate::packet::EncodeError::Json(
            serde::ser::Error::custom("not an event"),
        )))
    }

    fn adapter_ready(&mut self, nsp: NamespaceId) -> Result<(), Error> {
        self.cluster_uid(nsp)
            .map(|_| ())
            .ok_or(Error::Random(crate::RandomError))
    }

    /// A request with nothing to wait for: its reply is the next event.
    fn finish_at_once(&mut self, reply: ClusterReply) -> RequestHandle {
        let request = RequestHandle(self.next());
        self.events.push_back(Event::ClusterReply {
            request,
            reply,
            error: None,
        });
        request
    }

    /// Publishes a request (with a fresh id, asking the transport for the node count) and
    /// waits for it, at most the configured `requests_timeout`.
    fn start_request(
        &mut self,
        now: Instant,
        nsp: NamespaceId,
        local: Collected,
        make: impl FnOnce(String, String) -> classic::Request,
    ) -> Result<RequestHandle, Error> {
        self.adapter_ready(nsp)?;
        let handle = RequestHandle(self.next());
        let Some(c) = self.cluster.as_deref_mut() else {
            return Err(Error::ClusterBusy);
        };
        let Some(a) = c.adapters.get(&nsp) else {
            return Err(Error::ClusterBusy);
        };
        let request_id = a.request_id(self.engine.rng())?;
        if c.requests.len() >= c.config.max_requests {
            return Err(Error::ClusterBusy);
        }
        let timeout = c.config.requests_timeout;
        c.requests
            .start(now, request_id.clone(), handle.0, local, timeout);
        let id = request_id.clone();
        self.queue(nsp, Some(id), |a| {
            a.request(&make(a.uid.clone(), request_id))
        });
        Ok(handle)
    }

    /// A request ended: its reply, and the reference's error if it timed out.
    pub(crate) fn request_finished(&mut self, done: Finished) {
        let (received, expected) = done.answers;
        let cluster_adapter = self
            .cluster
            .as_deref()
            .is_some_and(|c| c.config.protocol != Protocol::Classic);
        let (reply, error) = match done.collected {
            Collected::AllRooms(rooms) => (
                ClusterReply::Rooms(rooms.into_iter().collect()),
                ClusterError::AllRoomsTimeout,
            ),
            // `ClusterAdapter`'s `fetchSockets` (sharded, streams) counts answers, and says so.
            Collected::Fetch(sockets) if cluster_adapter => (
                ClusterReply::Sockets(sockets),
                ClusterError::Incomplete { received, expected },
            ),
            Collected::Fetch(sockets) => (
                ClusterReply::Sockets(sockets),
                ClusterError::FetchSocketsTimeout,
            ),
            Collected::ServerSideEmit(answers) => (
                ClusterReply::Responses(answers.into_iter().filter_map(payload_of).collect()),
                ClusterError::Incomplete { received, expected },
            ),
        };
        self.events.push_back(Event::ClusterReply {
            request: RequestHandle(done.handle),
            reply,
            error: done.timed_out.then_some(error),
        });
    }
}

/// One value from the cluster as the arguments `[value]`, read like a client's (binary as
/// attachments).
pub(crate) fn payload_of(v: Value) -> Option<Payload> {
    Payload::serialize(&ClusterArgs(std::slice::from_ref(&v))).ok()
}
