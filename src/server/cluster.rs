//! The server as one node of a cluster (classic protocol, broadcasts): a broadcast leaves this
//! node as one message with its rooms, except and flags; a broadcast from another node runs the
//! same selection on this node's sockets. Nothing here knows Redis: messages to publish come
//! out of [`Server::poll_cluster_transmit`], received ones go into
//! [`Server::handle_cluster_message`].

use super::broadcast::Broadcast;
use super::Server;
use crate::cluster::classic::{self, Channels, ClusterPacket, Flags, Options, WireError};
use crate::cluster::requests::uid;
use crate::cluster::value::{self, ClusterArgs};
use crate::handle::NamespaceId;
use crate::packet::Encoded;
use crate::{RandomError, Str};
use ahash::AHashMap;
use bytes::Bytes;
use std::collections::VecDeque;

/// A message for the cluster: publish `payload` on `channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterTransmit {
    /// The channel (`socket.io#/#`, `socket.io#/#<room>#`, ...).
    pub channel: String,
    /// The bytes, as Node nodes write them.
    pub payload: Bytes,
}

/// One namespace's adapter: its uid (the reference draws one per namespace adapter) and
/// channels.
#[derive(Debug)]
struct Adapter {
    uid: String,
    channels: Channels,
}

#[derive(Debug)]
pub(crate) struct ClusterNode {
    prefix: String,
    adapters: AHashMap<NamespaceId, Adapter>,
    out: VecDeque<ClusterTransmit>,
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

impl<D> Server<D> {
    /// Makes this server a node of a cluster speaking the classic protocol of
    /// `@socket.io/redis-adapter` with key `prefix` (its default is `socket.io`): from now on
    /// every broadcast that is not [`local`](Broadcast::local) is also published, and
    /// broadcasts of other nodes given to [`handle_cluster_message`](Self::handle_cluster_message)
    /// reach this node's sockets.
    pub fn join_cluster(&mut self, prefix: &str) {
        self.cluster = Some(Box::new(ClusterNode {
            prefix: prefix.to_owned(),
            adapters: AHashMap::default(),
            out: VecDeque::new(),
        }));
    }

    /// This node's uid for a namespace (drawn on first use), and its channels: a transport
    /// subscribes to their [broadcast pattern](Channels::broadcast_pattern) (`PSUBSCRIBE`) and
    /// their [request channel](Channels::request) for that namespace. `None` outside a
    /// cluster, or without randomness for the uid.
    pub fn cluster_adapter(&mut self, nsp: NamespaceId) -> Option<(&str, &Channels)> {
        self.adapter(nsp).ok()?;
        let a = self.cluster.as_ref()?.adapters.get(&nsp)?;
        Some((a.uid.as_str(), &a.channels))
    }

    fn adapter(&mut self, nsp: NamespaceId) -> Result<(), RandomError> {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return Ok(());
        };
        if !cluster.adapters.contains_key(&nsp) {
            let uid = uid(self.engine.rng())?;
            let channels = Channels::new(&cluster.prefix, &self.router.nsp(nsp).name, &uid);
            cluster.adapters.insert(nsp, Adapter { uid, channels });
        }
        Ok(())
    }

    /// The next message to publish, if any. Call after every broadcast until it returns `None`.
    #[must_use]
    pub fn poll_cluster_transmit(&mut self) -> Option<ClusterTransmit> {
        self.cluster.as_deref_mut()?.out.pop_front()
    }

    /// Publishes a broadcast this node delivered locally. The packet is taken from its
    /// encoding: one message whatever the number of rooms and recipients.
    pub(crate) fn publish(&mut self, o: Outgoing, encoded: &Encoded) {
        if self.cluster.is_none() {
            return;
        }
        let Some(data) = event_data(encoded) else {
            return;
        };
        let nsp = self.router.nsp(o.nsp).name.to_string();
        self.queue(o.nsp, |a| {
            let message = classic::Broadcast {
                uid: a.uid.clone(),
                packet: ClusterPacket { nsp, data },
                opts: Options {
                    rooms: o.rooms,
                    except: o.except,
                    flags: Flags {
                        volatile: o.volatile,
                        compress: (!o.compress).then_some(false),
                        ..Flags::default()
                    },
                },
            };
            (
                a.channels.for_rooms(&message.opts.rooms),
                classic::encode_broadcast(&message),
            )
        });
    }

    /// Queues one message of namespace `nsp`'s adapter: `make` gets the adapter (its uid and
    /// channels) and gives the channel and the bytes. Nothing outside a cluster.
    fn queue(&mut self, nsp: NamespaceId, make: impl FnOnce(&Adapter) -> (String, Vec<u8>)) {
        if self.adapter(nsp).is_err() {
            return;
        }
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let Some(a) = cluster.adapters.get(&nsp) else {
            return;
        };
        let (channel, payload) = make(a);
        cluster.out.push_back(ClusterTransmit {
            channel,
            payload: Bytes::from(payload),
        });
    }

    /// This node's sockets of `nsp` that `opts` selects (rooms, except, flags), as a broadcast
    /// that stays on this node.
    fn remote_selection(&mut self, nsp: NamespaceId, opts: &Options) -> Broadcast<'_, D> {
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
        self.queue(o.nsp, |a| {
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
            (
                a.channels.request().to_owned(),
                classic::encode_request(&request),
            )
        });
    }

    /// This node's answer to a request that wants one: all its rooms, or its sockets that
    /// match (for `fetchSockets`: id and rooms; the handshake and data travel once the core
    /// holds them).
    fn answer(
        &mut self,
        nsp: NamespaceId,
        request: &classic::Request,
        request_id: String,
    ) -> classic::Response {
        let selection =
            |server: &mut Self, opts: &Options| server.remote_selection(nsp, opts).fetch();
        match request {
            classic::Request::Sockets { rooms, .. } => {
                let opts = Options {
                    rooms: rooms.clone(),
                    ..Options::default()
                };
                let sockets = selection(self, &opts)
                    .into_iter()
                    .map(|s| s.sid.to_string())
                    .collect();
                classic::Response::Sockets {
                    request_id,
                    sockets,
                }
            }
            classic::Request::Fetch { opts, .. } => {
                let sockets = selection(self, opts)
                    .into_iter()
                    .map(|s| classic::RemoteSocket {
                        id: s.sid.to_string(),
                        handshake: rmpv::Value::Map(Vec::new()),
                        rooms: s.rooms.iter().map(|r| r.to_string()).collect(),
                        data: rmpv::Value::Nil,
                    })
                    .collect();
                classic::Response::Fetch {
                    request_id,
                    sockets,
                }
            }
            _ => {
                // Every room, socket-id rooms included, as the reference's `allRooms`.
                let mut rooms: Vec<String> = self
                    .rooms(nsp)
                    .into_iter()
                    .map(|(r, _)| r.to_string())
                    .collect();
                let ids = self.to_namespace(nsp).local().fetch();
                rooms.extend(ids.into_iter().map(|s| s.sid.to_string()));
                classic::Response::AllRooms { request_id, rooms }
            }
        }
    }

    /// Publishes a response on the namespace's shared response channel.
    fn respond(&mut self, nsp: NamespaceId, response: &classic::Response) {
        self.queue(nsp, |a| {
            (
                a.channels.response().to_owned(),
                classic::encode_response(response),
            )
        });
    }

    /// Emits an event to the other nodes of the cluster (`serverSideEmit` without an ack):
    /// each reports it as an [`Event::ServerSideEmit`](crate::Event::ServerSideEmit); this
    /// node does not. Outside a cluster it reaches no one, as on a single Node server.
    pub fn server_side_emit<T: serde::Serialize + ?Sized>(
        &mut self,
        nsp: NamespaceId,
        event: &str,
        args: &T,
    ) -> Result<(), super::Error> {
        if self.cluster.is_none() {
            return Ok(());
        }
        // Encoded first: the name and arguments get the checks of any emit.
        let name = self.router.nsp(nsp).name.clone();
        let encoded = Encoded::event(&name, None, event, args)?;
        let Some(data) = event_data(&encoded) else {
            return Ok(());
        };
        // Without randomness for this namespace's uid, the emit is refused, not dropped.
        self.adapter(nsp)?;
        self.queue(nsp, |a| {
            let request = classic::Request::ServerSideEmit {
                uid: a.uid.clone(),
                request_id: None,
                data,
            };
            (
                a.channels.request().to_owned(),
                classic::encode_request(&request),
            )
        });
        Ok(())
    }

    /// Another node's `serverSideEmit`: reported as an event whose arguments read like a
    /// client's (binary included).
    fn on_server_side_emit(
        &mut self,
        nsp: NamespaceId,
        data: &[rmpv::Value],
    ) -> Result<usize, WireError> {
        let Some((name, args)) = data.split_first() else {
            return Ok(0);
        };
        let Some(name) = name.as_str() else {
            return Ok(0);
        };
        let nsp_name = self.router.nsp(nsp).name.clone();
        let encoded = Encoded::event(&nsp_name, None, name, &ClusterArgs(args))
            .map_err(|_| WireError::Malformed("event not encodable"))?;
        // Decoded as a client's packet would be: the application reads it the same way.
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
        let Some(crate::packet::Packet::Event { event, .. }) = out else {
            return Err(WireError::Malformed("event not decodable"));
        };
        self.events
            .push_back(super::Event::ServerSideEmit { nsp, event });
        Ok(1)
    }

    /// A request from another node on a namespace's request channel: joins, leaves and
    /// disconnects are applied to this node's matching sockets (the emitter's too; this
    /// node's own echo is dropped: it applied them already). Returns the sockets selected.
    fn handle_cluster_request(
        &mut self,
        nsp: NamespaceId,
        payload: &[u8],
    ) -> Result<usize, WireError> {
        let request = classic::decode_request(payload)?;
        let own = self
            .cluster
            .as_deref()
            .and_then(|c| c.adapters.get(&nsp))
            .map(|a| a.uid.clone());
        let (uid, opts) = match &request {
            classic::Request::Join { uid, opts, .. }
            | classic::Request::Leave { uid, opts, .. }
            | classic::Request::Disconnect { uid, opts, .. } => (uid, opts),
            classic::Request::ServerSideEmit {
                uid,
                request_id: None,
                data,
            } => {
                if Some(uid) == own.as_ref() {
                    return Ok(0);
                }
                return self.on_server_side_emit(nsp, data);
            }
            classic::Request::AllRooms { uid, request_id }
            | classic::Request::Sockets {
                uid, request_id, ..
            }
            | classic::Request::Fetch {
                uid, request_id, ..
            } => {
                // Its own request: the requester counts itself.
                if Some(uid) == own.as_ref() {
                    return Ok(0);
                }
                let response = self.answer(nsp, &request, request_id.clone());
                self.respond(nsp, &response);
                return Ok(0);
            }
            // Broadcasts with acks and emits with acks wait for the rest of the cluster layer.
            _ => return Ok(0),
        };
        if uid.is_some() && *uid == own {
            return Ok(0);
        }
        let b = self.remote_selection(nsp, opts);
        Ok(match &request {
            classic::Request::Join { rooms, .. } | classic::Request::Leave { rooms, .. } => {
                let join = matches!(request, classic::Request::Join { .. });
                let (server, handles) = b.take();
                for room in rooms {
                    for &s in &handles {
                        let _ = if join {
                            server.join(s, room)
                        } else {
                            server.leave(s, room)
                        };
                    }
                }
                handles.len()
            }
            classic::Request::Disconnect { close, .. } => b.disconnect(*close),
            _ => 0,
        })
    }

    /// A message received on a channel of the broadcast pattern or a request channel. A broadcast of another node
    /// (or of `@socket.io/redis-emitter`) reaches this node's sockets as if broadcast here;
    /// this node's own echo, another namespace's message and a room this node does not have
    /// are dropped, as the reference does. Returns the number of local sockets reached.
    pub fn handle_cluster_message(
        &mut self,
        channel: &str,
        payload: &[u8],
    ) -> Result<usize, WireError> {
        let Some(cluster) = self.cluster.as_deref() else {
            return Ok(0);
        };
        if let Some(nsp) = cluster
            .adapters
            .iter()
            .find_map(|(n, a)| (a.channels.request() == channel).then_some(*n))
        {
            return self.handle_cluster_request(nsp, payload);
        }
        let Some((nsp, room)) = cluster
            .adapters
            .iter()
            .find_map(|(n, a)| a.channels.room_of(channel).map(|r| (*n, r)))
        else {
            return Ok(0);
        };
        if !room.is_empty() && self.members(nsp, room).is_empty() {
            return Ok(0);
        }
        let message = classic::decode_broadcast(payload)?;
        let own = cluster.adapters.get(&nsp).map(|a| a.uid.as_str());
        if own == Some(message.uid.as_str())
            || message.packet.nsp != self.router.nsp(nsp).name.as_ref() as &str
        {
            return Ok(0);
        }
        let Some((name, args)) = message.packet.data.split_first() else {
            return Ok(0);
        };
        let Some(name) = name.as_str() else {
            return Ok(0);
        };
        let b = self.remote_selection(nsp, &message.opts);
        // Reserved names travel only from a broken or hostile publisher: refused, not sent.
        b.emit(name, &ClusterArgs(args))
            .map_err(|_| WireError::Malformed("event not encodable"))
    }
}

/// `[name, ...args]` of an encoded event, binary attachments as bin leaves.
fn event_data(encoded: &Encoded) -> Option<Vec<rmpv::Value>> {
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
        rmpv::Value::Array(items) => Some(items),
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
