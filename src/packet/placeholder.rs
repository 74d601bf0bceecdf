//! Binary placeholders `{"_placeholder":true,"num":<i>}`: validating them while decoding,
//! putting attachments back for deserialization, and writing them while serializing.

use super::decode::PayloadError;
use bytes::Bytes;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, Serializer};
use std::cell::{Cell, RefCell};

/// What a walked JSON value was, as far as placeholder checks care.
#[derive(Clone, Copy)]
pub(crate) enum Seen {
    True,
    Int(u64),
    Other,
}

/// Walks a whole JSON value and checks every placeholder's `num` against the attachment count.
/// On a bad placeholder it records the problem and stops serde with a generic error.
#[derive(Clone, Copy)]
pub(crate) struct Walk<'p> {
    attachments: usize,
    problem: &'p Cell<Option<PayloadError>>,
}

impl<'p> Walk<'p> {
    pub(crate) fn new(attachments: usize, problem: &'p Cell<Option<PayloadError>>) -> Self {
        Walk {
            attachments,
            problem,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Seen;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

/// The two keys a placeholder object is made of.
enum Key {
    Placeholder,
    Num,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "_placeholder" => Key::Placeholder,
                    "num" => Key::Num,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Seen, E> {
        Ok(if v { Seen::True } else { Seen::Other })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Seen, E> {
        Ok(Seen::Int(v))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seen, A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(Seen::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        // As in JavaScript, a repeated key counts with its last value.
        let mut placeholder = false;
        let mut num = None;
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value_seed(self)?;
            match key {
                Key::Placeholder => placeholder = matches!(value, Seen::True),
                Key::Num => num = Some(value),
                Key::Other => {}
            }
        }
        if placeholder && !matches!(num, Some(Seen::Int(n)) if n < self.attachments as u64) {
            self.problem.set(Some(PayloadError::InvalidPlaceholder {
                attachments: self.attachments,
            }));
            return Err(de::Error::custom("invalid placeholder"));
        }
        Ok(Seen::Other)
    }
}

/// Index of the attachment `value` stands for, if it is a placeholder.
fn placeholder_index(value: &serde_json::Value) -> Option<usize> {
    let obj = value.as_object()?;
    if obj.get("_placeholder")? != &serde_json::Value::Bool(true) {
        return None;
    }
    usize::try_from(obj.get("num")?.as_u64()?).ok()
}

/// Replaces each placeholder in `value` with its attachment as an array of byte values, the
/// form `Vec<u8>` and `Bytes` deserialize from.
pub(crate) fn restore(value: &mut serde_json::Value, attachments: &[Bytes]) {
    if let Some(bytes) = placeholder_index(value).and_then(|i| attachments.get(i)) {
        *value = serde_json::Value::Array(bytes.iter().map(|&b| b.into()).collect());
        return;
    }
    match value {
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| restore(v, attachments)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| restore(v, attachments)),
        _ => {}
    }
}

/// A `Serialize` that routes `value` through [`Intercept`], so bytes anywhere inside it become
/// placeholders and are collected in `sink`.
pub(crate) struct Wrap<'a, T: ?Sized> {
    pub(crate) value: &'a T,
    pub(crate) sink: &'a RefCell<Vec<Bytes>>,
}

impl<T: Serialize + ?Sized> Serialize for Wrap<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Intercept {
            inner: s,
            sink: self.sink,
        })
    }
}

/// A serializer that forwards everything to `inner`, except bytes: those are pushed to `sink`
/// and replaced by a placeholder.
struct Intercept<'a, S> {
    inner: S,
    sink: &'a RefCell<Vec<Bytes>>,
}

/// The compound half of [`Intercept`]: wraps each element, field, key and value.
struct Compound<'a, C> {
    inner: C,
    sink: &'a RefCell<Vec<Bytes>>,
}

impl<'a, S> Intercept<'a, S> {
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Wrap<'v, T>
    where
        'a: 'v,
    {
        Wrap {
            value,
            sink: self.sink,
        }
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$method($($arg),*)
        })*
    };
}

impl<'a, S: Serializer> Serializer for Intercept<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'a, S::SerializeSeq>;
    type SerializeTuple = Compound<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'a, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'a, S::SerializeMap>;
    type SerializeStruct = Compound<'a, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'a, S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        let num = {
            let mut sink = self.sink.borrow_mut();
            sink.push(Bytes::copy_from_slice(v));
            sink.len() - 1
        };
        let mut s = ser::Serializer::serialize_struct(self.inner, "Placeholder", 2)?;
        ser::SerializeStruct::serialize_field(&mut s, "_placeholder", &true)?;
        ser::SerializeStruct::serialize_field(&mut s, "num", &num)?;
        ser::SerializeStruct::end(s)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let v = self.wrap(value);
        self.inner.serialize_some(&v)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let v = self.wrap(value);
        self.inner.serialize_newtype_struct(name, &v)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let v = self.wrap(value);
        self.inner
            .serialize_newtype_variant(name, index, variant, &v)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let sink = self.sink;
        Ok(Compound {
            inner: self.inner.serialize_seq(len)?,
            sink,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let sink = self.sink;
        Ok(Compound {
            inner: self.inner.serialize_tuple(len)?,
            sink,
        })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let sink = self.sink;
        Ok(Compound {
            inner: self.inner.serialize_tuple_struct(name, len)?,
            sink,
        })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let sink = self.sink;
        Ok(Compound {
            inner: self
                .inner
                .serialize_tuple_variant(name, index, variant, len)?,
            sink,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let sink = self.sink;
        Ok(Compound {
            inner: self.inner.serialize_map(len)?,
            sink,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let sink = self.sink;
        Ok(Compound {
            inner: self.inner.serialize_struct(name, len)?,
            sink,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let sink = self.sink;
        Ok(Compound {
            inner: self
                .inner
                .serialize_struct_variant(name, index, variant, len)?,
            sink,
        })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The compound traits whose elements carry no key: each element goes through [`Wrap`].
macro_rules! compound_elements {
    ($($trait:ident::$method:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let sink = self.sink;
                self.inner.$method(&Wrap { value, sink })
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    )*};
}

compound_elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        // Keys must be strings in JSON: bytes there are an error either way.
        self.inner.serialize_key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let sink = self.sink;
        self.inner.serialize_value(&Wrap { value, sink })
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

/// The compound traits whose fields are named: each value goes through [`Wrap`].
macro_rules! compound_fields {
    ($($trait:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                let sink = self.sink;
                self.inner.serialize_field(key, &Wrap { value, sink })
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.inner.skip_field(key)
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    )*};
}

compound_fields!(SerializeStruct, SerializeStructVariant);
