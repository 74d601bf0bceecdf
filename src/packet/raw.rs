//! [`RawArgs`]: a received event's arguments as a value to emit again, attachments included.
//!
//! As the whole argument list of an emit or an ack (`emit("x", &event.args_raw())`), the
//! encoders recognise it ([`probe`]) and splice the arguments as they came, under either parser,
//! without parsing them: what `Encoded::event_with_args_of` does. Anywhere else (inside another
//! value, or given to any other serializer) it serializes as the sequence of the arguments, each
//! binary value as bytes (`serialize_bytes`), so the placeholder-aware serializer turns them back
//! into attachments and the msgpack parser into `bin`.
//!
//! Recognising it takes no downcast: `RawArgs` serializes as a newtype struct with a private
//! name, [`probe`] runs the top-level value through a serializer that fails at the first call
//! that is not that newtype (one call for any other value), and the newtype's content hands a
//! clone of the event to [`probe`] through a per-thread slot.

use super::types::Event;
use serde::ser::{self, Impossible, Serialize, Serializer};
use std::cell::{Cell, RefCell};
use std::fmt;

/// The newtype name `RawArgs` serializes under (no application type has it).
const TOKEN: &str = "\0roomcast::packet::RawArgs";

/// The arguments of a received event (everything after its name), attachments included, to
/// emit again as they are: pass it as the arguments of any emit or ack, under either parser
/// ([`Event::args_raw`], or `RawArgs::from(event)`). It owns what it needs (shared buffers:
/// making one copies no payload), so it can be kept, moved to another task or sent later.
///
/// As the whole argument list, the arguments are written as they came (the JSON text and the
/// attachments shared, or the msgpack bytes copied), without being parsed. Anywhere else (an
/// element of a tuple, a field), it is the sequence of the arguments, binary values as bytes.
///
/// ```
/// use roomcast::packet::{Decoder, Encoded, Packet, Parser};
/// use roomcast::{Limits, Str};
/// let mut decoder = Decoder::new(Limits::default());
/// decoder.push_text(Str::from_static(r#"51-["up",{"f":{"_placeholder":true,"num":0}},2]"#)).unwrap();
/// let packet = decoder.push_binary(bytes::Bytes::from_static(b"\x01\x02")).unwrap().unwrap();
/// let Packet::Event { event, .. } = packet else { panic!() };
///
/// let again = Encoded::event("/", None, "down", &event.args_raw()).unwrap();
/// assert_eq!(again.text(), r#"451-["down",{"f":{"_placeholder":true,"num":0}},2]"#);
/// assert_eq!(again.attachments(), event.data().attachments());
///
/// // Nested in another value, it is one argument: the array of the received ones.
/// let nested = Encoded::event("/", None, "from", &("bob", event.args_raw())).unwrap();
/// assert_eq!(nested.text(), r#"451-["from","bob",[{"f":{"_placeholder":true,"num":0}},2]]"#);
///
/// // Under msgpack, binary values are `bin` again.
/// let m = Parser::Msgpack.event("/", None, "down", &event.args_raw()).unwrap();
/// assert_eq!(m.frame_count(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawArgs {
    event: Event,
    /// Arguments left out at the front.
    skip: usize,
}

impl RawArgs {
    /// These arguments without the first `n` (all of them if there are fewer): a relay of
    /// `("room", data)` as `(data)`, binary included.
    ///
    /// Written as a sequence of values (binary values copied into the new packet's
    /// attachments, renumbered), not spliced: the received text holds no boundary to cut at
    /// without parsing.
    ///
    /// ```
    /// use roomcast::packet::{Decoder, Encoded, Packet};
    /// use roomcast::{Limits, Str};
    /// let mut decoder = Decoder::new(Limits::default());
    /// decoder.push_text(Str::from_static(r#"51-["speak","room",{"_placeholder":true,"num":0}]"#)).unwrap();
    /// let packet = decoder.push_binary(bytes::Bytes::from_static(b"\x07")).unwrap().unwrap();
    /// let Packet::Event { event, .. } = packet else { panic!() };
    /// let e = Encoded::event("/", None, "message", &event.args_raw().skip(1)).unwrap();
    /// assert_eq!(e.text(), r#"451-["message",{"_placeholder":true,"num":0}]"#);
    /// ```
    pub fn skip(self, n: usize) -> RawArgs {
        RawArgs {
            skip: self.skip.saturating_add(n),
            ..self
        }
    }

    /// The event whose arguments these are.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event back.
    pub fn into_event(self) -> Event {
        self.event
    }
}

impl From<Event> for RawArgs {
    fn from(event: Event) -> Self {
        RawArgs { event, skip: 0 }
    }
}

impl Serialize for RawArgs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(TOKEN, &Content(self))
    }
}

/// What `RawArgs` wraps in its newtype: hands the event to [`probe`] when it asks, else the
/// arguments as a sequence.
struct Content<'a>(&'a RawArgs);

thread_local! {
    /// Set by [`probe`] just before it serializes a `Content`.
    static PROBING: Cell<bool> = const { Cell::new(false) };
    /// Where that `Content` leaves its event.
    static FOUND: RefCell<Option<Event>> = const { RefCell::new(None) };
}

impl Serialize for Content<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RawArgs { event, skip } = self.0;
        if PROBING.with(|p| p.replace(false)) {
            if *skip > 0 {
                // Not to be spliced: the probe finds nothing, and this serializes as below.
                return Err(ser::Error::custom("arguments skipped"));
            }
            FOUND.with(|f| *f.borrow_mut() = Some(event.clone()));
            return s.serialize_unit();
        }
        let mut values = super::msgpack::arg_values(event).map_err(ser::Error::custom)?;
        values.drain(..(*skip).min(values.len()));
        values.serialize(s)
    }
}

/// If `value` is a [`RawArgs`], its event.
pub(super) fn probe<T: Serialize + ?Sized>(value: &T) -> Option<Event> {
    value.serialize(Probe).ok()?;
    FOUND.with(|f| f.borrow_mut().take())
}

/// "Not a `RawArgs`": the only error of [`Probe`].
#[derive(Debug)]
struct NotRaw;

impl fmt::Display for NotRaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not RawArgs")
    }
}

impl std::error::Error for NotRaw {}

impl ser::Error for NotRaw {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotRaw
    }
}

/// A serializer that accepts only `RawArgs`'s newtype and its content's unit.
struct Probe;

macro_rules! refuse {
    ($($method:ident($($ty:ty),*);)*) => {
        $(fn $method(self, $(_: $ty),*) -> Result<(), NotRaw> {
            Err(NotRaw)
        })*
    };
}

impl Serializer for Probe {
    type Ok = ();
    type Error = NotRaw;
    type SerializeSeq = Impossible<(), NotRaw>;
    type SerializeTuple = Impossible<(), NotRaw>;
    type SerializeTupleStruct = Impossible<(), NotRaw>;
    type SerializeTupleVariant = Impossible<(), NotRaw>;
    type SerializeMap = Impossible<(), NotRaw>;
    type SerializeStruct = Impossible<(), NotRaw>;
    type SerializeStructVariant = Impossible<(), NotRaw>;

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_unit(self) -> Result<(), NotRaw> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), NotRaw> {
        Err(NotRaw)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), NotRaw> {
        if name != TOKEN {
            return Err(NotRaw);
        }
        PROBING.with(|p| p.set(true));
        let result = value.serialize(Probe);
        PROBING.with(|p| p.set(false));
        result
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotRaw> {
        Err(NotRaw)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotRaw> {
        Err(NotRaw)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotRaw> {
        Err(NotRaw)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotRaw> {
        Err(NotRaw)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotRaw> {
        Err(NotRaw)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotRaw> {
        Err(NotRaw)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotRaw> {
        Err(NotRaw)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotRaw> {
        Err(NotRaw)
    }
}
