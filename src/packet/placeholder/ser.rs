//! Writing placeholders: a serializer wrapper that takes every byte string out of the value
//! being serialized, keeps it as an attachment and writes a placeholder in its place.

use bytes::Bytes;
use serde::ser::{self, Serialize, Serializer};
use std::cell::RefCell;

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
