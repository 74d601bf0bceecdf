//! [`Parser`]: which wire format Socket.IO packets are written in, for a whole server.

use super::encode::{EncodeError, Encoded};
use super::types::{Event, Packet, RESERVED_EVENTS};
use super::{msgpack, Decoder};
use crate::Limits;
use bytes::Bytes;
use serde::Serialize;

/// The Socket.IO parser: the format of every packet a server sends and receives. As in the
/// reference (`new Server({ parser })`), it belongs to the server, not to a connection: nothing
/// on the wire names it, and one encoding of a broadcast serves every recipient.
///
/// - [`Json`](Parser::Json) (the default): `socket.io-parser`, text packets with binary
///   attachments in the frames that follow.
/// - [`Msgpack`](Parser::Msgpack): `socket.io-msgpack-parser` 3.0, each packet one binary
///   message holding a msgpack map `{type, nsp, id?, data}`, binary values inline as `bin`.
///
/// Whatever the parser, decoded packets look the same to the application (a [`Payload`] is
/// JSON text with placeholders for binary values), and the constructors here take the same
/// arguments as those of [`Encoded`], which are the JSON parser's.
///
/// ```
/// use roomcast::packet::{Packet, Parser};
/// use roomcast::Limits;
/// let parser: Parser = "msgpack".parse().unwrap();
/// let e = parser.event("/", None, "hello", &("you",)).unwrap();
/// let bytes = e.binary().unwrap().clone();
/// let packet = parser.decoder(Limits::default()).push_binary(bytes).unwrap().unwrap();
/// let Packet::Event { event, .. } = packet else { panic!() };
/// assert_eq!((event.name(), event.data().json().as_str()), ("hello", r#"["hello","you"]"#));
/// ```
///
/// [`Payload`]: super::Payload
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Parser {
    /// The default parser (`socket.io-parser`).
    #[default]
    Json,
    /// `socket.io-msgpack-parser` 3.0 (notepack.io values).
    Msgpack,
}

/// A parser name that is neither `json` (or `default`) nor `msgpack`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown parser {0:?}: expected \"json\" (or \"default\") or \"msgpack\"")]
pub struct UnknownParser(pub String);

impl std::str::FromStr for Parser {
    type Err = UnknownParser;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "" | "json" | "default" => Ok(Parser::Json),
            "msgpack" => Ok(Parser::Msgpack),
            _ => Err(UnknownParser(s.to_owned())),
        }
    }
}

impl std::fmt::Display for Parser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Parser::Json => "json",
            Parser::Msgpack => "msgpack",
        })
    }
}

fn check_name(name: &str) -> Result<(), EncodeError> {
    if RESERVED_EVENTS.contains(&name) {
        return Err(EncodeError::ReservedEventName(name.to_owned()));
    }
    Ok(())
}

impl Parser {
    /// A decoder of this parser's packets, one per connection.
    pub fn decoder(self, limits: Limits) -> Decoder {
        Decoder::with_parser(self, limits)
    }

    /// An EVENT; arguments as for [`Encoded::event`].
    pub fn event<T: Serialize + ?Sized>(
        self,
        nsp: &str,
        id: Option<u64>,
        name: &str,
        args: &T,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::event(nsp, id, name, args),
            Parser::Msgpack => {
                check_name(name)?;
                msgpack::event(nsp, id, name, args)
            }
        }
    }

    /// An EVENT whose arguments are raw JSON values and the attachments their placeholders
    /// refer to, as for [`Encoded::event_raw`].
    pub fn event_raw(
        self,
        nsp: &str,
        id: Option<u64>,
        name: &str,
        args: &[&serde_json::value::RawValue],
        attachments: &[Bytes],
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::event_raw(nsp, id, name, args, attachments),
            Parser::Msgpack => {
                check_name(name)?;
                msgpack::event_raw(nsp, id, name, args, attachments)
            }
        }
    }

    /// An EVENT with the arguments of a received event under a new name, as for
    /// [`Encoded::event_with_args_of`]. Under msgpack, an event decoded by the msgpack parser
    /// keeps its arguments' bytes: they are copied as they came, not re-encoded.
    pub fn event_with_args_of(
        self,
        nsp: &str,
        id: Option<u64>,
        name: &str,
        event: &Event,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::event_with_args_of(nsp, id, name, event),
            Parser::Msgpack => {
                check_name(name)?;
                msgpack::event_with_args_of(nsp, id, name, event)
            }
        }
    }

    /// An ACK answering event `id`; arguments as for [`Encoded::ack`].
    pub fn ack<T: Serialize + ?Sized>(
        self,
        nsp: &str,
        id: u64,
        args: &T,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::ack(nsp, id, args),
            Parser::Msgpack => msgpack::ack(nsp, id, args),
        }
    }

    /// An ACK with the arguments of a received event, as for [`Encoded::ack_with_args_of`].
    pub fn ack_with_args_of(
        self,
        nsp: &str,
        id: u64,
        event: &Event,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::ack_with_args_of(nsp, id, event),
            Parser::Msgpack => msgpack::ack_with_args_of(nsp, id, event),
        }
    }

    /// A CONNECT, as for [`Encoded::connect`].
    pub fn connect<T: Serialize + ?Sized>(
        self,
        nsp: &str,
        data: Option<&T>,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::connect(nsp, data),
            Parser::Msgpack => msgpack::connect(nsp, data),
        }
    }

    /// A CONNECT_ERROR, as for [`Encoded::connect_error`].
    pub fn connect_error<T: Serialize + ?Sized>(
        self,
        nsp: &str,
        data: &T,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::connect_error(nsp, data),
            Parser::Msgpack => msgpack::connect_error(nsp, data),
        }
    }

    /// A DISCONNECT from `nsp`.
    pub fn disconnect(self, nsp: &str) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => Encoded::disconnect(nsp),
            Parser::Msgpack => msgpack::disconnect(nsp),
        }
    }

    /// Encodes a decoded packet. Decoding the result with this parser gives back the same
    /// packet; under msgpack, its JSON may be written differently (the same values).
    pub fn encode(self, packet: &Packet) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => packet.encode(),
            Parser::Msgpack => msgpack::encode_packet(packet),
        }
    }
}
