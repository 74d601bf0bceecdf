//! The server as one node of a cluster (the classic or sharded protocol of
//! `@socket.io/redis-adapter`, `cluster::adapter`): a broadcast leaves this node as one message
//! with its rooms, except and flags; a broadcast
//! from another node runs the same selection on this node's sockets; requests carry ids and
//! are answered once by every node. Nothing here knows Redis: messages to publish come out of
//! [`Server::poll_cluster_transmit`], received ones go into
//! [`Server::handle_cluster_message`], node counts into [`Server::handle_node_count`], and what
//! to subscribe to out of [`Server::poll_cluster_subscription`].
//!
//! This node's own requests (`fetchSockets`, `allRooms`, `serverSideEmit` with acks) are in
//! `requests`; this file is the node's part: its adapters, what it publishes, what it does
//! with what it receives.

use super::acks::{Owner, RemoteAck};
use super::broadcast::Broadcast;
use super::event::ServerSideAck;
use super::Server;
use crate::cluster::adapter::{Adapter, Body, Protocol, Route, StreamLayout, Topic};
use crate::cluster::classic::{self, ClusterPacket, Flags, Options, WireError};
use crate::cluster::requests::Requests;
use crate::cluster::sharded;
use crate::cluster::streams::{self, EntryFields, StreamEntry};
use crate::cluster::value::{self, ClusterArgs};
use crate::handle::NamespaceId;
use crate::packet::Encoded;
use crate::{RandomError, Str};
use ahash::AHashMap;
use bytes::Bytes;
use rmpv::Value;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How this node takes part in a cluster: the reference's adapter options, and the bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The protocol (default: the classic one).
    pub protocol: Protocol,
    /// The channel prefix (`key` of `createAdapter`, `channelPrefix` of
    /// `createShardedAdapter`; default `socket.io`).
    pub prefix: String,
    /// How long `fetchSockets`, `allRooms` and `serverSideEmit` with acks wait for the other
    /// nodes (`requestsTimeout`; default 5 s).
    pub requests_timeout: Duration,
    /// Requests of this node waiting at once; more are refused with
    /// [`Error::ClusterBusy`](super::Error::ClusterBusy) (default 4,096).
    pub max_requests: usize,
    /// What one request keeps of the other nodes' answers (sockets of a `fetchSockets`,
    /// rooms of an `allRooms`, answers to a `serverSideEmit` or to a broadcast with acks;
    /// default 100,000): another node can send any number. More still count towards the
    /// request's completion, but are not kept; they are counted in [`Server::cluster_dropped`].
    pub max_answers: usize,
    /// Messages waiting for the transport; more are dropped and counted in
    /// [`Server::cluster_dropped`] (default 65,536). A transport that drains
    /// [`Server::poll_cluster_transmit`] after every input never gets near it.
    pub max_queued: usize,
    /// The stream of [`Protocol::Streams`] (`streamName`, `streamCount`, `maxLen`).
    pub stream: StreamLayout,
    /// Where [`Protocol::Streams`] keeps the sessions of connection state recovery
    /// (`sessionKeyPrefix`, default `sio:session:`).
    pub session_key_prefix: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            protocol: Protocol::Classic,
            prefix: "socket.io".to_owned(),
            requests_timeout: Duration::from_secs(5),
            max_requests: 4096,
            max_answers: crate::cluster::requests::DEFAULT_MAX_ITEMS,
            max_queued: 65_536,
            stream: StreamLayout::default(),
            session_key_prefix: streams::DEFAULT_SESSION_KEY_PREFIX.to_owned(),
        }
    }
}

/// A message for the cluster: publish `payload` on `channel` (or what [`command`](Self::command)
/// says instead).
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterTransmit {
    /// The channel (`socket.io#/#`, `socket.io#/#<room>#`, `socket.io-request#/#`, ...); the
    /// stream or the key for the other commands.
    pub channel: String,
    /// What to do (publish, unless the protocol or recovery asks for more).
    pub command: Command,
    /// The bytes, as Node nodes write them (the value, for [`Command::SaveSession`]).
    pub payload: Bytes,
    /// Whether it goes by sharded Pub/Sub (`SPUBLISH`) rather than `PUBLISH`.
    pub sharded: bool,
    /// Set on a request that waits for every node: count them (before publishing) and give
    /// the figure to [`Server::handle_node_count`].
    pub count: Option<NodeCount>,
}

/// What the transport does with a [`ClusterTransmit`]. In order: a stream entry after a publish
/// stays after it.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `PUBLISH <channel> <payload>` (`SPUBLISH` when [`sharded`](ClusterTransmit::sharded)).
    Publish,
    /// `XADD <channel> MAXLEN ~ <max_len> * <fields…>` ([`Protocol::Streams`]). With `offset`,
    /// this node's sockets get the broadcast once its entry id is known: hand it to
    /// [`Server::handle_stream_offset`] (or `None` if the write failed).
    Append {
        /// The entry's fields, in order.
        fields: EntryFields,
        /// `maxLen`.
        max_len: u64,
        /// Set when the entry id must come back.
        offset: Option<StreamOffset>,
    },
    /// `SET <channel> <payload> PX <ttl>`: a dropped socket's session, for connection state
    /// recovery on any node ([`Protocol::Streams`]).
    SaveSession {
        /// How long it may be recovered.
        ttl: Duration,
    },
    /// Take (read and delete, in one step) the session stored under `channel`, and read the
    /// stream after the client's offset; answer with [`Server::handle_restore`].
    Restore(SessionRestore),
}

/// A broadcast of this node waits for its stream entry's id, the offset every recipient gets:
/// consumed by [`Server::handle_stream_offset`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "this node's sockets get the broadcast when its offset comes back"]
pub struct StreamOffset(pub(crate) u64);

/// A recovering client waits for its session: consumed by [`Server::handle_restore`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the client waits for its session"]
pub struct SessionRestore {
    pub(crate) seq: u64,
    pub(crate) stream: String,
    pub(crate) offset: String,
}

impl SessionRestore {
    /// The stream of the client's namespace.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The client's offset, an entry id (`<ms>-<seq>`): it must still be in the stream
    /// (`XRANGE <stream> <offset> <offset>`), and what follows it is what the client missed.
    pub fn offset(&self) -> &str {
        &self.offset
    }
}

/// What the transport found for a [`SessionRestore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFound {
    /// The stored value (`base64(msgpack({sid, pid, rooms, data}))`).
    pub session: Bytes,
    /// The entries after the offset, in order.
    pub entries: Vec<StreamEntry>,
    /// Whether they are all of them (a transport reads a bounded number): an incomplete
    /// replay is never given, the client gets a fresh socket.
    pub complete: bool,
}

/// A request waits for one answer per node: the transport counts the nodes subscribed to
/// [`channel`](Self::channel) (`PUBSUB NUMSUB`, or `PUBSUB SHARDNUMSUB` when
/// [`sharded`](Self::sharded)) and hands the figure back with
/// [`Server::handle_node_count`], which consumes this token. If it cannot count (Redis is
/// down), it drops the token: the request ends at its timeout with what it got.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the request waits for the node count"]
pub struct NodeCount {
    request_id: String,
    channel: String,
    sharded: bool,
}

impl NodeCount {
    /// The channel whose subscribers are the nodes.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Whether they subscribe by sharded Pub/Sub (count with `SHARDNUMSUB`).
    pub fn sharded(&self) -> bool {
        self.sharded
    }
}

/// A change of what the transport subscribes to, on its one subscriber connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterSubscription {
    /// Subscribe (a namespace joined the cluster; sharded: this node has a new public room).
    Subscribe(Vec<Topic>),
    /// Unsubscribe (sharded: this node no longer has the room).
    Unsubscribe(Vec<Topic>),
}

pub(crate) struct ClusterNode<D> {
    pub(crate) config: ClusterConfig,
    pub(crate) adapters: AHashMap<NamespaceId, Adapter>,
    pub(crate) out: VecDeque<ClusterTransmit>,
    dropped: u64,
    pub(crate) requests: Requests,
    /// Subscription changes the transport has not taken yet.
    subscriptions: VecDeque<ClusterSubscription>,
    /// How a socket's data travels in `fetchSockets` answers and stored sessions.
    pub(crate) data: fn(&D) -> Value,
    /// How a stored session's data comes back (streams protocol).
    pub(crate) restore_data: fn(Value) -> Option<D>,
    /// This node's broadcasts waiting for their stream entry ids, in order (streams protocol
    /// with recovery on).
    pub(crate) pending: VecDeque<super::streams::Pending>,
    pub(crate) next_offset: u64,
}

impl<D> ClusterNode<D> {
    /// Queues a message for the transport, within [`ClusterConfig::max_queued`] (past it,
    /// dropped and counted).
    pub(crate) fn push(&mut self, t: ClusterTransmit) {
        if self.out.len() >= self.config.max_queued {
            self.dropped += 1;
            return;
        }
        self.out.push_back(t);
    }
}

impl<D> std::fmt::Debug for ClusterNode<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("adapters", &self.adapters)
            .field("queued", &self.out.len())
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

/// A socket's data as it travels: what `serde` makes of it as JSON (structs as maps, as Node
/// reads them), byte strings as binary; nil if it cannot be serialized.
pub(crate) fn data_value<D: Serialize>(d: &D) -> Value {
    value::to_value(d).unwrap_or(Value::Nil)
}

/// An operation on the selected sockets that every node applies to its own (`socketsJoin`,
/// `socketsLeave`, `disconnectSockets`): fire and forget, no answer.
pub(crate) enum Remote {
    Join(String),
    Leave(String),
    Disconnect(bool),
}

/// What a broadcast selected, kept to publish it after the local delivery.
pub(crate) struct Outgoing {
    pub(crate) nsp: NamespaceId,
    pub(crate) rooms: Vec<String>,
    pub(crate) except: Vec<String>,
    pub(crate) volatile: bool,
    pub(crate) compress: bool,
}

impl Outgoing {
    fn options(self, timeout: Option<u64>) -> Options {
        Options {
            rooms: self.rooms,
            except: self.except,
            flags: Flags {
                volatile: self.volatile,
                compress: (!self.compress).then_some(false),
                timeout,
                ..Flags::default()
            },
        }
    }
}

impl<D: Serialize + serde::de::DeserializeOwned> Server<D> {
    /// Makes this server a node of a cluster speaking the classic protocol of
    /// `@socket.io/redis-adapter` (and receiving what `@socket.io/redis-emitter` sends): from
    /// now on every broadcast that is not [`local`](Broadcast::local) is also published, and
    /// what other nodes publish, given to
    /// [`handle_cluster_message`](Self::handle_cluster_message), reaches this node's sockets.
    /// A socket's data travels in `fetchSockets` answers (and, with [`Protocol::Streams`] and
    /// recovery on, in stored sessions, read back with `serde` on any node) as `serde`
    /// serializes it.
    pub fn join_cluster(&mut self, config: ClusterConfig) {
        let requests = Requests::new(config.max_answers);
        self.cluster = Some(Box::new(ClusterNode {
            config,
            adapters: AHashMap::default(),
            out: VecDeque::new(),
            dropped: 0,
            requests,
            subscriptions: VecDeque::new(),
            data: data_value::<D>,
            restore_data: |v| value::from_value(v).ok(),
            pending: VecDeque::new(),
            next_offset: 0,
        }));
        // Every namespace has its adapter from now on (a namespace added later gets its own
        // when added): the transport subscribes before any message can be missed.
        let nsps: Vec<NamespaceId> = self.namespaces().map(|(n, _)| n).collect();
        for n in nsps {
            let _ = self.adapter(n);
        }
    }
}

impl<D> Server<D> {
    /// This node's uid for a namespace (each namespace's adapter has its own, as in the
    /// reference). `None` outside a cluster, or without randomness for the uid.
    pub fn cluster_uid(&mut self, nsp: NamespaceId) -> Option<&str> {
        self.adapter(nsp).ok()?;
        let a = self.cluster.as_ref()?.adapters.get(&nsp)?;
        Some(a.uid.as_str())
    }

    fn adapter(&mut self, nsp: NamespaceId) -> Result<(), RandomError> {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return Ok(());
        };
        if !cluster.adapters.contains_key(&nsp) {
            let Some(name) = self.router.nsp_name(nsp) else {
                return Ok(());
            };
            let a = Adapter::new(
                cluster.config.protocol,
                &cluster.config.prefix,
                &cluster.config.stream,
                name,
                self.engine.rng(),
            )?;
            // A namespace's own channels are never dropped (there are few).
            cluster
                .subscriptions
                .push_back(ClusterSubscription::Subscribe(a.topics()));
            cluster.adapters.insert(nsp, a);
        }
        Ok(())
    }

    /// Gives a namespace its adapter if this node is in a cluster (a namespace just added).
    pub(crate) fn adapter_for_new(&mut self, nsp: NamespaceId) {
        // Without randomness for its uid it joins the cluster on first use instead.
        let _ = self.adapter(nsp);
    }

    /// A namespace was removed: its adapter goes, and the transport unsubscribes from its
    /// channels (the reference's `adapter.close()`). Requests it had in flight finish by
    /// their timeout.
    pub(crate) fn drop_adapter(&mut self, nsp: NamespaceId) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        if let Some(a) = cluster.adapters.remove(&nsp) {
            cluster
                .subscriptions
                .push_back(ClusterSubscription::Unsubscribe(a.topics()));
        }
    }

    /// A room of this node was created or deleted: with the sharded protocol, the node
    /// subscribes to the channel of each public room it has (a socket's own room is not one).
    pub(crate) fn cluster_room(&mut self, nsp: NamespaceId, room: &str, created: bool) {
        let Some(cluster) = self.cluster.as_deref() else {
            return;
        };
        let Some(topic) = cluster.adapters.get(&nsp).and_then(|a| a.room_topic(room)) else {
            return;
        };
        if self.socket_by_sid(room).is_some() {
            return;
        }
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        // Bounded like the messages: a transport that drains after every input never gets
        // near it; one that does not loses room channels, counted.
        if cluster.subscriptions.len() >= cluster.config.max_queued {
            cluster.dropped += 1;
            return;
        }
        cluster.subscriptions.push_back(if created {
            ClusterSubscription::Subscribe(vec![topic])
        } else {
            ClusterSubscription::Unsubscribe(vec![topic])
        });
    }

    /// The next change of subscriptions: a transport applies it on its one subscriber
    /// connection before anything else. Call after
    /// [`join_cluster`](Self::join_cluster) and after every input, until `None`.
    #[must_use]
    pub fn poll_cluster_subscription(&mut self) -> Option<ClusterSubscription> {
        self.cluster.as_deref_mut()?.subscriptions.pop_front()
    }

    /// The next message to publish, if any. Call after every input until it returns `None`.
    #[must_use]
    pub fn poll_cluster_transmit(&mut self) -> Option<ClusterTransmit> {
        self.cluster.as_deref_mut()?.out.pop_front()
    }

    /// What the cluster layer did not keep: messages (and sharded room subscriptions) the
    /// transport did not take ([`ClusterConfig::max_queued`]), and other nodes' answers over a
    /// request's bound ([`ClusterConfig::max_answers`]).
    pub fn cluster_dropped(&self) -> u64 {
        self.cluster.as_deref().map_or(0, |c| {
            c.dropped + c.requests.dropped() + self.acks.cluster_dropped
        })
    }

    /// Publishes a broadcast this node delivered locally. The packet is taken from its
    /// encoding: one message whatever the number of rooms and recipients.
    pub(crate) fn publish(&mut self, o: Outgoing, encoded: &Encoded) {
        // A message the transport had no room for is counted in `cluster_dropped`.
        let _ = self.publish_with(o, encoded, None);
    }

    /// [`publish`](Self::publish); on a stream, its entry id to come back as `offset`.
    /// Whether it was queued.
    pub(crate) fn publish_with(
        &mut self,
        o: Outgoing,
        encoded: &Encoded,
        offset: Option<StreamOffset>,
    ) -> bool {
        if self.cluster.is_none() {
            return false;
        }
        let Some(data) = event_data(encoded) else {
            return false;
        };
        let Some(nsp) = self.router.nsp_name(o.nsp).map(|n| n.to_string()) else {
            return false;
        };
        let at = o.nsp;
        self.queue_with(at, None, offset, |a| {
            let message = classic::Broadcast {
                uid: a.uid.clone(),
                packet: ClusterPacket { nsp, data },
                opts: o.options(None),
            };
            Some(a.broadcast(&message))
        })
    }

    /// Publishes this node's broadcast with acks (delivered here already) as a request: every
    /// other node reports its client count, then each client's answer.
    pub(crate) fn publish_broadcast_with_ack(
        &mut self,
        o: Outgoing,
        request_id: String,
        encoded: &Encoded,
        timeout: Duration,
    ) {
        let Some(data) = event_data(encoded) else {
            return;
        };
        let Some(nsp) = self.router.nsp_name(o.nsp).map(|n| n.to_string()) else {
            return;
        };
        let at = o.nsp;
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.queue(at, Some(request_id.clone()), |a| {
            let request = classic::Request::BroadcastWithAck {
                uid: a.uid.clone(),
                request_id,
                packet: ClusterPacket { nsp, data },
                opts: o.options(Some(ms)),
            };
            a.request(&request)
        });
    }

    /// Queues one message of namespace `nsp`'s adapter: `make` gets the adapter (its uid and
    /// channels) and gives the channel and the bytes; `count` asks the transport for the node
    /// count of that request. Nothing outside a cluster.
    pub(crate) fn queue(
        &mut self,
        nsp: NamespaceId,
        count: Option<String>,
        make: impl FnOnce(&Adapter) -> Option<(String, Body)>,
    ) {
        self.queue_with(nsp, count, None, make);
    }

    /// [`queue`](Self::queue), a stream entry's id to come back as `offset`. Whether it was
    /// queued.
    pub(crate) fn queue_with(
        &mut self,
        nsp: NamespaceId,
        count: Option<String>,
        offset: Option<StreamOffset>,
        make: impl FnOnce(&Adapter) -> Option<(String, Body)>,
    ) -> bool {
        if self.adapter(nsp).is_err() {
            return false;
        }
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return false;
        };
        let Some(a) = cluster.adapters.get(&nsp) else {
            return false;
        };
        if cluster.out.len() >= cluster.config.max_queued {
            cluster.dropped += 1;
            return false;
        }
        let sharded = a.sharded();
        let count = count.map(|request_id| NodeCount {
            request_id,
            channel: a.count_channel().to_owned(),
            sharded,
        });
        let Some((channel, body)) = make(a) else {
            return false;
        };
        let (command, payload) = match body {
            Body::Publish(bytes) => (Command::Publish, Bytes::from(bytes)),
            Body::Entry(fields) => {
                let max_len = a.stream().map_or(0, |(_, m)| m);
                let command = Command::Append {
                    fields,
                    max_len,
                    offset,
                };
                (command, Bytes::new())
            }
        };
        cluster.out.push_back(ClusterTransmit {
            channel,
            payload,
            sharded,
            count,
            command,
        });
        true
    }

    /// The node count for a request: it may now be complete.
    pub fn handle_node_count(&mut self, count: NodeCount, nodes: usize) {
        let NodeCount { request_id, .. } = count;
        if self.acks.is_own_request(&request_id) {
            self.acks
                .cluster_nodes(&request_id, nodes, &mut self.events);
            return;
        }
        let Some(c) = self.cluster.as_deref_mut() else {
            return;
        };
        if let Some(done) = c.requests.set_nodes(&request_id, nodes) {
            self.request_finished(done);
        }
    }

    /// This node's sockets of `nsp` that `opts` selects (rooms, except, flags), as a broadcast
    /// that stays on this node.
    pub(crate) fn remote_selection(
        &mut self,
        nsp: NamespaceId,
        opts: &Options,
    ) -> Broadcast<'_, D> {
        let mut b = self.to_namespace(nsp).local();
        for r in &opts.rooms {
            b = b.to(Str::from(r.as_str()));
        }
        for r in &opts.except {
            b = b.except(Str::from(r.as_str()));
        }
        if opts.flags.volatile {
            b = b.volatile();
        }
        if opts.flags.compress == Some(false) {
            b = b.compress(false);
        }
        b
    }

    /// Publishes a join, leave or disconnect of the selection for the other nodes (this node
    /// applied it already, and drops its own echo).
    pub(crate) fn publish_request(&mut self, o: Outgoing, op: Remote) {
        self.queue(o.nsp, None, |a| {
            let uid = Some(a.uid.clone());
            let opts = Options {
                rooms: o.rooms,
                except: o.except,
                flags: Flags::default(),
            };
            let request = match op {
                Remote::Join(room) => classic::Request::Join {
                    uid,
                    opts,
                    rooms: vec![room],
                },
                Remote::Leave(room) => classic::Request::Leave {
                    uid,
                    opts,
                    rooms: vec![room],
                },
                Remote::Disconnect(close) => classic::Request::Disconnect { uid, opts, close },
            };
            a.request(&request)
        });
    }

    /// This node's sockets that `opts` selects, as a `fetchSockets` answer carries them.
    pub(crate) fn local_sockets(
        &mut self,
        nsp: NamespaceId,
        opts: &Options,
        data: fn(&D) -> Value,
    ) -> Vec<classic::RemoteSocket> {
        let (server, handles) = self.remote_selection(nsp, opts).take();
        handles
            .into_iter()
            .map(|s| classic::RemoteSocket {
                id: server.router.sid(s).unwrap_or_default().to_owned(),
                handshake: server.handshake_of(s),
                rooms: server
                    .router
                    .rooms_of(s)
                    .iter()
                    .map(|r| r.to_string())
                    .collect(),
                data: server.data(s).map_or(Value::Nil, data),
            })
            .collect()
    }

    /// A socket's `socket.handshake`, as Node's has it.
    fn handshake_of(&self, s: crate::SocketHandle) -> Value {
        super::handshake::handshake(&self.handshake(s))
    }

    /// Every room of `nsp` on this node, socket-id rooms included (`allRooms`).
    pub(crate) fn local_rooms(&mut self, nsp: NamespaceId) -> Vec<String> {
        let mut rooms: Vec<String> = self
            .rooms(nsp)
            .into_iter()
            .map(|(r, _)| r.to_string())
            .collect();
        let ids = self.to_namespace(nsp).local().fetch();
        rooms.extend(ids.into_iter().map(|s| s.sid.to_string()));
        rooms
    }

    /// This node's answer to a request that wants one.
    fn answer(
        &mut self,
        nsp: NamespaceId,
        request: &classic::Request,
        request_id: String,
    ) -> classic::Response {
        let data: fn(&D) -> Value = self.cluster.as_deref().map_or(nil_data::<D>, |c| c.data);
        match request {
            classic::Request::Sockets { rooms, .. } => {
                let opts = Options {
                    rooms: rooms.clone(),
                    ..Options::default()
                };
                let sockets = self
                    .remote_selection(nsp, &opts)
                    .fetch()
                    .into_iter()
                    .map(|s| s.sid.to_string())
                    .collect();
                classic::Response::Sockets {
                    request_id,
                    sockets,
                }
            }
            classic::Request::Fetch { opts, .. } => classic::Response::Fetch {
                request_id,
                sockets: self.local_sockets(nsp, opts, data),
            },
            _ => classic::Response::AllRooms {
                request_id,
                rooms: self.local_rooms(nsp),
            },
        }
    }

    /// Publishes a response for the node `to` (classic: on the shared response channel).
    pub(crate) fn respond(
        &mut self,
        nsp: NamespaceId,
        to: Option<&str>,
        response: &classic::Response,
    ) {
        self.queue(nsp, None, |a| a.response(to, response));
    }

    /// A client answered another node's broadcast with acks: its first argument goes back.
    pub(crate) fn send_remote_ack(&mut self, ack: RemoteAck) {
        let packet = value::from_payload(&ack.data)
            .ok()
            .and_then(|v| match v {
                Value::Array(mut items) if !items.is_empty() => Some(items.swap_remove(0)),
                _ => None,
            })
            .unwrap_or(Value::Nil);
        let response = classic::Response::BroadcastAck {
            request_id: ack.request_id,
            packet,
        };
        self.respond(ack.nsp, Some(&ack.requester), &response);
    }

    /// Another node's `serverSideEmit`: reported as an event whose arguments read like a
    /// client's (binary included); with `request_id`, the application's answer goes back.
    fn on_server_side_emit(
        &mut self,
        nsp: NamespaceId,
        data: &[Value],
        request_id: Option<&String>,
        requester: &str,
    ) -> Result<usize, WireError> {
        let Some((name, args)) = named(data) else {
            return Ok(0);
        };
        let event = self.decode_event(nsp, name, args)?;
        let ack = request_id.map(|id| ServerSideAck {
            nsp,
            request_id: id.clone(),
            requester: requester.to_owned(),
        });
        self.events
            .push_back(super::Event::ServerSideEmit { nsp, event, ack });
        Ok(1)
    }

    /// An event from the cluster, read as a client's packet would be: the application reads
    /// it the same way.
    fn decode_event(
        &mut self,
        nsp: NamespaceId,
        name: &str,
        args: &[Value],
    ) -> Result<crate::packet::Event, WireError> {
        let nsp_name = self
            .router
            .nsp_name(nsp)
            .cloned()
            .ok_or(WireError::Malformed("namespace removed"))?;
        let encoded = Encoded::event(&nsp_name, None, name, &ClusterArgs(args))
            .map_err(|_| WireError::Malformed("event not encodable"))?;
        let mut decoder = crate::packet::Decoder::new(self.engine.config().limits);
        let mut frames = encoded.frames();
        let mut out = None;
        if let Some(crate::engine::Frame::Text(text)) = frames.next() {
            let body = text.slice(1..text.len()).unwrap_or_default();
            out = decoder.push_text(body).ok().flatten();
        }
        for f in frames {
            if let crate::engine::Frame::Binary(b) = f {
                out = decoder.push_binary(b).ok().flatten();
            }
        }
        match out {
            Some(crate::packet::Packet::Event { event, .. }) => Ok(event),
            _ => Err(WireError::Malformed("event not decodable")),
        }
    }

    /// Another node's broadcast with acks, run on this node's sockets: the client count goes
    /// back at once (also 0), each client's answer as it comes.
    fn on_broadcast_with_ack(
        &mut self,
        now: Instant,
        nsp: NamespaceId,
        requester: &str,
        request_id: String,
        packet: &ClusterPacket,
        opts: &Options,
    ) -> Result<usize, WireError> {
        let Some((name, args)) = named(&packet.data) else {
            return Ok(0);
        };
        // The requester forgets the request after its timeout; so does this node.
        let timeout = opts.flags.timeout.map_or_else(
            || {
                self.cluster
                    .as_deref()
                    .map_or(Duration::ZERO, |c| c.config.requests_timeout)
            },
            Duration::from_millis,
        );
        let owner = Owner::Remote {
            request_id: request_id.clone(),
            requester: requester.to_owned(),
            nsp,
        };
        let reached = self
            .remote_selection(nsp, opts)
            .emit_with_ack_for(now, name, &ClusterArgs(args), timeout, owner)
            .map_err(|_| WireError::Malformed("event not encodable"))?;
        // Queued after the delivery, but before any answer can be: answers come as inputs.
        self.respond(
            nsp,
            Some(requester),
            &classic::Response::ClientCount {
                request_id,
                count: reached as u64,
            },
        );
        Ok(reached)
    }

    /// A request from another node on a namespace's request channel: joins, leaves and
    /// disconnects are applied to this node's matching sockets (the emitter's too; this
    /// node's own echo is dropped: it applied them already); requests that want an answer get
    /// exactly one. Returns the sockets selected.
    fn handle_cluster_request(
        &mut self,
        now: Instant,
        nsp: NamespaceId,
        request: classic::Request,
    ) -> Result<usize, WireError> {
        let own = self
            .cluster
            .as_deref()
            .and_then(|c| c.adapters.get(&nsp))
            .map(|a| a.uid.clone());
        let is_own = |uid: &str| own.as_deref() == Some(uid);
        match &request {
            classic::Request::Join { uid, opts, rooms }
            | classic::Request::Leave { uid, opts, rooms } => {
                if uid.as_deref().is_some_and(is_own) {
                    return Ok(0);
                }
                let join = matches!(request, classic::Request::Join { .. });
                let (server, handles) = self.remote_selection(nsp, opts).take();
                for room in rooms {
                    for &s in &handles {
                        let _ = if join {
                            server.join(s, room)
                        } else {
                            server.leave(s, room)
                        };
                    }
                }
                Ok(handles.len())
            }
            classic::Request::Disconnect { uid, opts, close } => {
                if uid.as_deref().is_some_and(is_own) {
                    return Ok(0);
                }
                Ok(self.remote_selection(nsp, opts).disconnect(*close))
            }
            classic::Request::ServerSideEmit {
                uid,
                request_id,
                data,
            } => {
                if is_own(uid) {
                    return Ok(0);
                }
                self.on_server_side_emit(nsp, data, request_id.as_ref(), uid)
            }
            classic::Request::AllRooms { uid, request_id }
            | classic::Request::Sockets {
                uid, request_id, ..
            }
            | classic::Request::Fetch {
                uid, request_id, ..
            } => {
                // Its own request: the requester counts itself.
                if is_own(uid) {
                    return Ok(0);
                }
                let response = self.answer(nsp, &request, request_id.clone());
                self.respond(nsp, Some(uid), &response);
                Ok(0)
            }
            classic::Request::BroadcastWithAck {
                uid,
                request_id,
                packet,
                opts,
            } => {
                if is_own(uid) || self.acks.is_own_request(request_id) {
                    return Ok(0);
                }
                if self
                    .router
                    .nsp_name(nsp)
                    .is_none_or(|n| packet.nsp != n.as_ref() as &str)
                {
                    return Ok(0);
                }
                self.on_broadcast_with_ack(now, nsp, uid, request_id.clone(), packet, opts)
            }
            // Single-socket requests of nodes before 7.0: the node holding the socket answers.
            classic::Request::Legacy {
                kind,
                request_id,
                sid,
                room,
            } => {
                let Some(s) = self.socket_by_sid(sid) else {
                    return Ok(0);
                };
                if self.socket_namespace(s) != Some(nsp) {
                    return Ok(0);
                }
                match (*kind, room) {
                    (classic::request_type::REMOTE_JOIN, Some(room)) => {
                        let _ = self.join(s, room);
                    }
                    (classic::request_type::REMOTE_LEAVE, Some(room)) => {
                        let _ = self.leave(s, room);
                    }
                    (classic::request_type::REMOTE_DISCONNECT, _) => {
                        let _ = self.disconnect(s);
                    }
                    _ => return Ok(0),
                }
                let done = classic::Response::Done {
                    request_id: request_id.clone(),
                };
                self.respond(nsp, None, &done);
                Ok(1)
            }
        }
    }

    /// A response to one of this node's requests (on the shared or its own response channel).
    fn handle_cluster_response(&mut self, response: classic::Response) -> Result<usize, WireError> {
        match response {
            classic::Response::ClientCount { request_id, count } => {
                self.acks
                    .cluster_count(&request_id, count, &mut self.events);
            }
            classic::Response::BroadcastAck { request_id, packet } => {
                if self.acks.is_own_request(&request_id) {
                    if let Some(p) = super::requests::payload_of(packet) {
                        self.acks.cluster_reply(&request_id, p, &mut self.events);
                    }
                }
            }
            other => {
                let Some(c) = self.cluster.as_deref_mut() else {
                    return Ok(0);
                };
                if let Some(done) = c.requests.on_response(other) {
                    self.request_finished(done);
                }
            }
        }
        Ok(0)
    }

    /// A message received on a channel this node subscribes to (what
    /// [`poll_cluster_subscription`](Self::poll_cluster_subscription) named). A broadcast of
    /// another node (or of
    /// `@socket.io/redis-emitter`) reaches this node's sockets as if broadcast here; this
    /// node's own echo, another namespace's message and a room this node does not have are
    /// dropped, as the reference does. Returns the number of local sockets reached.
    ///
    /// Bad input is an error for the caller to log; it changes nothing here.
    pub fn handle_cluster_message(
        &mut self,
        now: Instant,
        channel: &str,
        payload: &[u8],
    ) -> Result<usize, WireError> {
        let Some(cluster) = self.cluster.as_deref() else {
            return Ok(0);
        };
        let Some((nsp, route)) = cluster
            .adapters
            .iter()
            .find_map(|(n, a)| a.route(channel).map(|r| (*n, r)))
        else {
            return Ok(0);
        };
        match route {
            Route::Request => {
                let request = classic::decode_request(payload)?;
                self.handle_cluster_request(now, nsp, request)
            }
            Route::Response => self.handle_cluster_response(classic::decode_response(payload)?),
            Route::Broadcast(room) => {
                if !room.is_empty() && self.members(nsp, room).is_empty() {
                    return Ok(0);
                }
                let message = classic::decode_broadcast(payload)?;
                self.on_broadcast(nsp, &message)
            }
            Route::Sharded => self.on_envelope(now, nsp, sharded::decode(payload)?, None),
            Route::Streams => {
                self.on_envelope(now, nsp, streams::decode_publication(payload)?, None)
            }
        }
    }

    /// A `ClusterAdapter` message (sharded or streams protocol) for namespace `nsp`; a stream
    /// entry's broadcast comes with the entry id, its `offset`. This node's own and another
    /// namespace's are dropped.
    pub(crate) fn on_envelope(
        &mut self,
        now: Instant,
        nsp: NamespaceId,
        envelope: sharded::Envelope,
        offset: Option<&str>,
    ) -> Result<usize, WireError> {
        let own = self
            .cluster
            .as_deref()
            .and_then(|c| c.adapters.get(&nsp))
            .is_some_and(|a| a.uid == envelope.uid);
        if own
            || self
                .router
                .nsp_name(nsp)
                .is_none_or(|n| envelope.nsp != n.as_ref() as &str)
        {
            return Ok(0);
        }
        match envelope.message {
            sharded::Message::Broadcast(b) => match offset {
                Some(o) if self.recovery.is_some() && !b.opts.flags.volatile => {
                    self.on_broadcast_numbered(nsp, &b, o)
                }
                _ => self.on_broadcast(nsp, &b),
            },
            sharded::Message::Request(r) => self.handle_cluster_request(now, nsp, r),
            sharded::Message::Response(r) => self.handle_cluster_response(r),
            _ => Ok(0),
        }
    }

    /// Another node's broadcast from the stream, run on this node's sockets with its entry id
    /// as the last argument (the offset every copy carries, on every node).
    fn on_broadcast_numbered(
        &mut self,
        nsp: NamespaceId,
        message: &classic::Broadcast,
        offset: &str,
    ) -> Result<usize, WireError> {
        let Some((name, args)) = named(&message.packet.data) else {
            return Ok(0);
        };
        let Some(nsp_name) = self.router.nsp_name(nsp).cloned() else {
            return Ok(0);
        };
        let encoded = self
            .parser()
            .event(&nsp_name, None, name, &ClusterArgs(args))
            .map_err(|_| WireError::Malformed("event not encodable"))?
            .with_last_arg(offset);
        Ok(self
            .remote_selection(nsp, &message.opts)
            .emit_numbered(&encoded))
    }

    /// Another node's (or the emitter's) broadcast, run on this node's sockets.
    fn on_broadcast(
        &mut self,
        nsp: NamespaceId,
        message: &classic::Broadcast,
    ) -> Result<usize, WireError> {
        let own = self
            .cluster
            .as_deref()
            .and_then(|c| c.adapters.get(&nsp))
            .map(|a| a.uid.as_str());
        if own == Some(message.uid.as_str())
            || self
                .router
                .nsp_name(nsp)
                .is_none_or(|n| message.packet.nsp != n.as_ref() as &str)
        {
            return Ok(0);
        }
        let Some((name, args)) = named(&message.packet.data) else {
            return Ok(0);
        };
        let b = self.remote_selection(nsp, &message.opts);
        // Reserved names travel only from a broken or hostile publisher: refused, not sent.
        b.emit(name, &ClusterArgs(args))
            .map_err(|_| WireError::Malformed("event not encodable"))
    }
}

/// `[name, ...args]` as the event name and its arguments; `None` without a string name
/// (nothing a client could be sent).
pub(crate) fn named(data: &[Value]) -> Option<(&str, &[Value])> {
    let (name, args) = data.split_first()?;
    Some((name.as_str()?, args))
}

fn nil_data<D>(_: &D) -> Value {
    Value::Nil
}

/// `[name, ...args]` of an encoded event, binary attachments as bin leaves.
pub(crate) fn event_data(encoded: &Encoded) -> Option<Vec<Value>> {
    if let Some(bytes) = encoded.binary() {
        return msgpack_event_data(bytes.clone());
    }
    let text: &str = encoded.text();
    // `4` (Engine.IO message), the Socket.IO type, `<n>-` for binary, `<nsp>,` unless `/`,
    // then the ack id digits: the JSON array starts at the first `[` after those. A namespace
    // name holds no `,`, so the header ends at the first `,` or `[`.
    let start = text.find(['[', ','])?;
    let json_at = if text.as_bytes()[start] == b',' {
        start + 1 + text[start + 1..].find('[')?
    } else {
        start
    };
    match value::from_parts(&text[json_at..], encoded.attachments()).ok()? {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// `[name, ...args]` of a msgpack event this server encoded, read back by the msgpack parser's
/// decoder: the same value tree as from the JSON parser's packet (binary leaves; notepack's
/// `undefined` and dates, relayed from msgpack clients, as the JSON view has them), whatever
/// the clients' parser, so the other nodes get what a JSON node would publish.
fn msgpack_event_data(bytes: bytes::Bytes) -> Option<Vec<Value>> {
    let limits = crate::Limits {
        max_attachments: usize::MAX,
        ..crate::Limits::DEFAULT
    };
    let packet = crate::packet::Parser::Msgpack
        .decoder(limits)
        .push_binary(bytes)
        .ok()??;
    let crate::packet::Packet::Event { event, .. } = packet else {
        return None;
    };
    match value::from_payload(event.data()).ok()? {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

impl<D> Broadcast<'_, D> {
    /// What is needed to publish this broadcast after delivering it here, if it goes to the
    /// cluster at all.
    pub(crate) fn outgoing(&self) -> Option<Outgoing> {
        if self.local || self.server.cluster.is_none() {
            return None;
        }
        let mut except: Vec<String> = self.except.iter().map(|r| r.to_string()).collect();
        // `socket.broadcast` travels as the sender's id in `except`, as the reference sends it.
        if let Some(sid) = self.exclude.and_then(|s| self.server.sid(s)) {
            if !except.iter().any(|e| e == sid) {
                except.push(sid.to_owned());
            }
        }
        Some(Outgoing {
            nsp: self.nsp,
            rooms: self.rooms.iter().map(|r| r.to_string()).collect(),
            except,
            volatile: self.volatile,
            compress: self.compress,
        })
    }
}
