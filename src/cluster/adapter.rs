//! One namespace's adapter on the wire: its uid, and the channels and framing of the protocol
//! the cluster speaks. The node acts on the same messages whatever the protocol; this is
//! where the two Redis protocols differ.

use super::classic::{self, Broadcast, Request, Response};
use super::sharded;
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
}

#[derive(Debug)]
enum Wire {
    Classic(classic::Channels),
    Sharded(sharded::Channels),
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
            Wire::Sharded(_) => sharded::uid(rng),
        }
    }

    pub(crate) fn sharded(&self) -> bool {
        matches!(self.wire, Wire::Sharded(_))
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
        }
    }

    /// The channel of a public room this node has (sharded, `dynamic` mode).
    pub(crate) fn room_topic(&self, room: &str) -> Option<Topic> {
        match &self.wire {
            Wire::Classic(_) => None,
            Wire::Sharded(c) => Some(Topic::Shard(c.room(room))),
        }
    }

    /// The channel whose subscribers are the nodes (`PUBSUB NUMSUB` / `SHARDNUMSUB`).
    pub(crate) fn count_channel(&self) -> &str {
        match &self.wire {
            Wire::Classic(c) => c.request(),
            Wire::Sharded(c) => c.main(),
        }
    }

    /// A broadcast without acks: where it goes and its bytes.
    pub(crate) fn broadcast(&self, b: &Broadcast) -> (String, Vec<u8>) {
        match &self.wire {
            Wire::Classic(c) => (c.for_rooms(&b.opts.rooms), classic::encode_broadcast(b)),
            Wire::Sharded(c) => (c.for_broadcast(&b.opts.rooms), sharded::encode_broadcast(b)),
        }
    }

    /// A request; `None` if the protocol has no such request.
    pub(crate) fn request(&self, r: &Request) -> Option<(String, Vec<u8>)> {
        match &self.wire {
            Wire::Classic(c) => Some((c.request().to_owned(), classic::encode_request(r))),
            Wire::Sharded(c) => Some((c.main().to_owned(), sharded::encode_request(r, &self.nsp)?)),
        }
    }

    /// A response to the node `to` (the requester, when the request named it).
    pub(crate) fn response(&self, to: Option<&str>, r: &Response) -> Option<(String, Vec<u8>)> {
        match &self.wire {
            // Every classic requester listens on the shared channel.
            Wire::Classic(c) => Some((c.response().to_owned(), classic::encode_response(r))),
            Wire::Sharded(c) => Some((
                c.responses_of(to?),
                sharded::encode_response(r, &self.uid, &self.nsp)?,
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
        }
    }
}
