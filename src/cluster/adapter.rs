//! One namespace's adapter on the wire: its uid, and the channels and framing of the protocol
//! the cluster speaks. The node acts on the same messages whatever the protocol; this is
//! where the two Redis protocols differ.

use super::classic::{self, Broadcast, Request, Response};
use super::sharded;
use super::streams::{self, EntryFields};
use crate::{RandomError, RandomSource};

/// Which protocol of `@socket.io/redis-adapter` the cluster speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// `createAdapter(pub, sub)`: Pub/Sub with a pattern subscription (also what
    /// `@socket.io/redis-emitter` speaks).
    #[default]
    Classic,
    /// `createShardedAdapter(pub, sub)` (Redis 7): sharded Pub/Sub, `subscriptionMode:
    /// "dynamic"` (a node subscribes to the channels of the public rooms it has).
    Sharded,
    /// `createAdapter(client)` of `@socket.io/redis-streams-adapter` 0.3: broadcasts, joins,
    /// leaves and disconnects as entries of a Redis stream (whose ids are the offsets of
    /// connection state recovery), the rest over plain Pub/Sub.
    Streams,
}

/// The stream's layout (`streamName`, `streamCount`, `maxLen`) of [`Protocol::Streams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLayout {
    /// `streamName` (default `socket.io`).
    pub name: String,
    /// `streamCount` (default 1): namespaces are spread over this many streams.
    pub count: u32,
    /// `maxLen` (default 10,000): `XADD … MAXLEN ~ <max_len>`.
    pub max_len: u64,
}

impl Default for StreamLayout {
    fn default() -> Self {
        StreamLayout {
            name: streams::DEFAULT_STREAM_NAME.to_owned(),
            count: 1,
            max_len: streams::DEFAULT_MAX_LEN,
        }
    }
}

/// Something to subscribe to, on the transport's one subscriber connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Topic {
    /// A channel (`SUBSCRIBE`).
    Channel(String),
    /// A glob pattern (`PSUBSCRIBE`).
    Pattern(String),
    /// A sharded channel (`SSUBSCRIBE`).
    Shard(String),
    /// A stream to read (`XREAD BLOCK … STREAMS <key> <last id>`), its entries given to
    /// [`Server::handle_stream_entries`](crate::Server::handle_stream_entries). Several
    /// namespaces may share one: read it once.
    Stream(String),
}

/// What a message is: bytes to publish, or an entry for a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// Bytes to publish.
    Publish(Vec<u8>),
    /// Fields of a stream entry.
    Entry(EntryFields),
}

/// What a channel carries for an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'c> {
    /// Classic: requests.
    Request,
    /// Classic: responses.
    Response,
    /// Classic: broadcasts, to this room (`""`: the whole namespace's channel).
    Broadcast(&'c str),
    /// Sharded: any message, in its envelope.
    Sharded,
    /// Streams: a Pub/Sub message, msgpack of its envelope.
    Streams,
}

#[derive(Debug)]
enum Wire {
    Classic(classic::Channels),
    Sharded(sharded::Channels),
    Streams {
        channels: sharded::Channels,
        stream: String,
        max_len: u64,
    },
}

/// One namespace's adapter.
#[derive(Debug)]
pub(crate) struct Adapter {
    pub(crate) uid: String,
    nsp: String,
    wire: Wire,
}

impl Adapter {
    /// A fresh adapter with a uid drawn as the reference draws it for `protocol`.
    pub(crate) fn new(
        protocol: Protocol,
        prefix: &str,
        layout: &StreamLayout,
        nsp: &str,
        rng: &mut dyn RandomSource,
    ) -> Result<Self, RandomError> {
        let (uid, wire) = match protocol {
            Protocol::Classic => {
                let uid = super::requests::uid(rng)?;
                let c = classic::Channels::new(prefix, nsp, &uid);
                (uid, Wire::Classic(c))
            }
            Protocol::Sharded => {
                let uid = sharded::uid(rng)?;
                let c = sharded::Channels::new(prefix, nsp, &uid);
                (uid, Wire::Sharded(c))
            }
            Protocol::Streams => {
                let uid = sharded::uid(rng)?;
                let wire = Wire::Streams {
                    channels: sharded::Channels::new(prefix, nsp, &uid),
                    stream: streams::stream_key(&layout.name, layout.count, nsp),
                    max_len: layout.max_len,
                };
                (uid, wire)
            }
        };
        Ok(Adapter {
            uid,
            nsp: nsp.to_owned(),
            wire,
        })
    }

    /// A fresh request id.
    pub(crate) fn request_id(&self, rng: &mut dyn RandomSource) -> Result<String, RandomError> {
        match self.wire {
            Wire::Classic(_) => super::requests::uid(rng),
            Wire::Sharded(_) | Wire::Streams { .. } => sharded::uid(rng),
        }
    }

    pub(crate) fn sharded(&self) -> bool {
        matches!(self.wire, Wire::Sharded(_))
    }

    /// The stream of this namespace and its `maxLen` (the streams protocol only).
    pub(crate) fn stream(&self) -> Option<(&str, u64)> {
        match &self.wire {
            Wire::Streams {
                stream, max_len, ..
            } => Some((stream, *max_len)),
            _ => None,
        }
    }

    /// What the node subscribes to for this namespace (one subscription each: a second one
    /// would count as a second node).
    pub(crate) fn topics(&self) -> Vec<Topic> {
        match &self.wire {
            Wire::Classic(c) => vec![
                Topic::Pattern(c.broadcast_pattern()),
                Topic::Channel(c.request().to_owned()),
                Topic::Channel(c.response().to_owned()),
                Topic::Channel(c.own_response().to_owned()),
            ],
            Wire::Sharded(c) => vec![
                Topic::Shard(c.main().to_owned()),
                Topic::Shard(c.own().to_owned()),
            ],
            Wire::Streams {
                channels, stream, ..
            } => vec![
                Topic::Channel(channels.main().to_owned()),
                Topic::Channel(channels.own().to_owned()),
                Topic::Stream(stream.clone()),
            ],
        }
    }

    /// The channel of a public room this node has (sharded, `dynamic` mode).
    pub(crate) fn room_topic(&self, room: &str) -> Option<Topic> {
        match &self.wire {
            Wire::Classic(_) | Wire::Streams { .. } => None,
            Wire::Sharded(c) => Some(Topic::Shard(c.room(room))),
        }
    }

    /// The channel whose subscribers are the nodes (`PUBSUB NUMSUB` / `SHARDNUMSUB`).
    pub(crate) fn count_channel(&self) -> &str {
        match &self.wire {
            Wire::Classic(c) => c.request(),
            Wire::Sharded(c) => c.main(),
            Wire::Streams { channels, .. } => channels.main(),
        }
    }

    /// A broadcast without acks: where it goes and its bytes.
    pub(crate) fn broadcast(&self, b: &Broadcast) -> (String, Body) {
        match &self.wire {
            Wire::Classic(c) => (
                c.for_rooms(&b.opts.rooms),
                Body::Publish(classic::encode_broadcast(b)),
            ),
            Wire::Sharded(c) => (
                c.for_broadcast(&b.opts.rooms),
                Body::Publish(sharded::encode_broadcast(b)),
            ),
            Wire::Streams { stream, .. } => {
                (stream.clone(), Body::Entry(streams::encode_broadcast(b)))
            }
        }
    }

    /// A request; `None` if the protocol has no such request.
    pub(crate) fn request(&self, r: &Request) -> Option<(String, Body)> {
        match &self.wire {
            Wire::Classic(c) => Some((
                c.request().to_owned(),
                Body::Publish(classic::encode_request(r)),
            )),
            Wire::Sharded(c) => Some((
                c.main().to_owned(),
                Body::Publish(sharded::encode_request(r, &self.nsp)?),
            )),
            Wire::Streams {
                channels, stream, ..
            } => Some(match streams::encode_request(r, &self.nsp)? {
                streams::Outgoing::Stream(fields) => (stream.clone(), Body::Entry(fields)),
                streams::Outgoing::Publish(bytes) => {
                    (channels.main().to_owned(), Body::Publish(bytes))
                }
            }),
        }
    }

    /// A response to the node `to` (the requester, when the request named it).
    pub(crate) fn response(&self, to: Option<&str>, r: &Response) -> Option<(String, Body)> {
        match &self.wire {
            // Every classic requester listens on the shared channel.
            Wire::Classic(c) => Some((
                c.response().to_owned(),
                Body::Publish(classic::encode_response(r)),
            )),
            Wire::Sharded(c) => Some((
                c.responses_of(to?),
                Body::Publish(sharded::encode_response(r, &self.uid, &self.nsp)?),
            )),
            Wire::Streams { channels, .. } => Some((
                channels.responses_of(to?),
                Body::Publish(streams::encode_response(r, &self.uid, &self.nsp)?),
            )),
        }
    }

    /// What `channel` carries for this adapter, if it is one of its channels.
    pub(crate) fn route<'c>(&self, channel: &'c str) -> Option<Route<'c>> {
        match &self.wire {
            Wire::Classic(c) => {
                if c.request() == channel {
                    Some(Route::Request)
                } else if c.response() == channel || c.own_response() == channel {
                    Some(Route::Response)
                } else {
                    c.room_of(channel).map(Route::Broadcast)
                }
            }
            Wire::Sharded(c) => {
                let rest = channel.strip_prefix(c.main())?;
                (rest.is_empty() || rest.ends_with('#')).then_some(Route::Sharded)
            }
            Wire::Streams { channels, .. } => {
                (channel == channels.main() || channel == channels.own()).then_some(Route::Streams)
            }
        }
    }
}
