//! Reading placeholders: a `serde` deserializer that wraps serde_json's over the payload text and
//! hands each placeholder's attachment to the application's visitor as bytes.
//!
//! Every deserializer, visitor, sequence, map and enum access serde_json produces is wrapped, so a
//! placeholder is caught at any depth. At each object the wrapper reads the first key (as raw
//! text, which locates it in the payload) and [`classify`]s the object from the text that follows,
//! looking at no more than two members with scalar values:
//!
//! - a placeholder: the rest of the object is skipped, and the visitor gets the attachment with
//!   `visit_borrowed_bytes` when it asked for bytes (`bytes::Bytes`, `serde_bytes`), or as a
//!   sequence of `u8` otherwise (a plain `Vec<u8>`, `serde_json::Value`, anything that asks for
//!   "any value"), which is what the earlier `serde_json::Value`-based path gave every type;
//! - any other object: the visitor gets the map, its first key given again as serde_json's
//!   map-key deserializer gives keys (lent from the payload when asked for as a string, replayed
//!   through serde_json itself for numeric and other keys, so they behave exactly as without the
//!   wrapper), and everything after it streamed as serde_json reads it. Nothing is buffered.
//!
//! Each byte of the payload is read once by serde_json and at most once more by the classifier,
//! which never enters a container: the cost stays linear however deep the nesting.

use super::shape::{classify, Shape};
use bytes::Bytes;
use serde::de::value::{SeqAccessDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IgnoredAny, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_json::value::RawValue;
use std::fmt;
use std::marker::PhantomData;

/// The newtype name serde_json gives `RawValue`: a value asked for raw keeps its text,
/// placeholders included, and must reach serde_json unwrapped.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Deserializes `T` from `json`, its placeholders standing for `attachments`.
pub(crate) fn deserialize<T: DeserializeOwned>(
    json: &str,
    attachments: &[Bytes],
) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = if attachments.is_empty() {
        T::deserialize(&mut de)?
    } else {
        T::deserialize(Deserializer::new(&mut de, json, attachments))?
    };
    de.end()?;
    Ok(value)
}

/// Deserializes `T` from the elements after the first of the array `json` (an event's arguments
/// after its name).
pub(crate) fn deserialize_args<T: DeserializeOwned>(
    json: &str,
    attachments: &[Bytes],
) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = if attachments.is_empty() {
        de::Deserializer::deserialize_seq(&mut de, SkipFirst(PhantomData))?
    } else {
        de::Deserializer::deserialize_seq(
            Deserializer::new(&mut de, json, attachments),
            SkipFirst(PhantomData),
        )?
    };
    de.end()?;
    Ok(value)
}

/// Deserializes `T` from the elements of a sequence after its first one.
struct SkipFirst<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for SkipFirst<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        seq.next_element::<IgnoredAny>()?;
        T::deserialize(SeqAccessDeserializer::new(seq))
    }
}

/// What every wrapper carries: the whole payload text (every raw key serde_json lends is a slice
/// of it) and the attachments.
#[derive(Clone, Copy)]
struct Ctx<'de> {
    input: &'de str,
    attachments: &'de [Bytes],
}

impl<'de> Ctx<'de> {
    /// Offset of `key` (a slice serde_json lent from the payload) in the payload.
    fn locate(&self, key: &str) -> Option<usize> {
        let at = (key.as_ptr() as usize).checked_sub(self.input.as_ptr() as usize)?;
        (at + key.len() <= self.input.len()).then_some(at)
    }
}

/// What the visitor asked for, as far as a placeholder cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hint {
    Bytes,
    Other,
}

/// Wraps a deserializer of one value of the payload.
struct Deserializer<'de, D> {
    inner: D,
    ctx: Ctx<'de>,
}

impl<'de, D> Deserializer<'de, D> {
    fn new(inner: D, input: &'de str, attachments: &'de [Bytes]) -> Self {
        Deserializer {
            inner,
            ctx: Ctx { input, attachments },
        }
    }

    fn visit<V>(&self, visitor: V, hint: Hint) -> Visit<'de, V> {
        Visit {
            visitor,
            ctx: self.ctx,
            hint,
        }
    }
}

macro_rules! forward_wrapped {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor, Hint::Other);
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for Deserializer<'de, D> {
    type Error = D::Error;

    forward_wrapped! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
    }

    // serde_json refuses an object where bytes or a sequence are asked for, without showing it to
    // the visitor: ask for any value, so that `visit_map` sees a placeholder there. For every
    // other value serde_json visits the same way under both requests.
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visit(visitor, Hint::Bytes);
        self.inner.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visit(visitor, Hint::Bytes);
        self.inner.deserialize_any(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visit(visitor, Hint::Other);
        self.inner.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visit(visitor, Hint::Other);
        self.inner.deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visit(visitor, Hint::Other);
        self.inner.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        if name == RAW_VALUE_TOKEN {
            return self.inner.deserialize_newtype_struct(name, visitor);
        }
        let visitor = self.visit(visitor, Hint::Other);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // Nothing skipped needs its bytes.
        self.inner.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Wraps the application's visitor: forwards every value, wrapping what holds further values,
/// and turns placeholders into their attachments.
struct Visit<'de, V> {
    visitor: V,
    ctx: Ctx<'de>,
    hint: Hint,
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    // Asked for bytes, serde_json gives a string's bytes: keep that under the wrapper, which
    // asked serde_json for any value instead.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        match self.hint {
            Hint::Bytes => self.visitor.visit_bytes(v.as_bytes()),
            Hint::Other => self.visitor.visit_str(v),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        match self.hint {
            Hint::Bytes => self.visitor.visit_borrowed_bytes(v.as_bytes()),
            Hint::Other => self.visitor.visit_borrowed_str(v),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        match self.hint {
            Hint::Bytes => self.visitor.visit_byte_buf(v.into_bytes()),
            Hint::Other => self.visitor.visit_string(v),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(Deserializer {
            inner: d,
            ctx: self.ctx,
        })
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_newtype_struct(Deserializer {
            inner: d,
            ctx: self.ctx,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_seq(Seq { seq, ctx: self.ctx })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Enum {
            data,
            ctx: self.ctx,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
        let ctx = self.ctx;
        let Some(key) = map.next_key::<&'de RawValue>()? else {
            return self.visitor.visit_map(Map {
                map,
                ctx,
                first: None,
            });
        };
        let key = key.get();
        let at = ctx
            .locate(key)
            .ok_or_else(|| de::Error::custom("map key outside the payload"))?;
        let num = match classify(&ctx.input[at..]) {
            Shape::Map => {
                return self.visitor.visit_map(Map {
                    map,
                    ctx,
                    first: Some((at, key.len())),
                })
            }
            Shape::Placeholder(num) => num,
        };
        map.next_value::<IgnoredAny>()?;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        let bytes = num
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| ctx.attachments.get(n))
            .ok_or_else(|| {
                de::Error::custom(format_args!(
                    "invalid placeholder: num is not an integer in 0..{}",
                    ctx.attachments.len()
                ))
            })?;
        match self.hint {
            Hint::Bytes => self.visitor.visit_borrowed_bytes(bytes),
            Hint::Other => {
                let mut seq = SeqDeserializer::new(bytes.iter().copied());
                let value = self.visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
        }
    }
}

/// Wraps each element's deserializer.
struct Seq<'de, A> {
    seq: A,
    ctx: Ctx<'de>,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'de, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.seq.next_element_seed(Seed {
            seed,
            ctx: self.ctx,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

/// A map that is not a placeholder: its first key, already read to tell, is replayed; the rest
/// comes straight from serde_json, each value wrapped.
struct Map<'de, A> {
    map: A,
    ctx: Ctx<'de>,
    /// Offset and length of the first key's raw text, until it is replayed.
    first: Option<(usize, usize)>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some((at, len)) => seed
                .deserialize(FirstKey {
                    input: self.ctx.input,
                    at,
                    len,
                    error: PhantomData,
                })
                .map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(Seed {
            seed,
            ctx: self.ctx,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// The first key of a map that is not a placeholder, already read as raw text to tell: given
/// again to the application as serde_json's map-key deserializer would. A key without escapes
/// asked for as a string (a field name, a `String`) is lent straight from the payload, as serde_json
/// does; any other request replays the key through serde_json itself ([`replay_key`]).
struct FirstKey<'de, E> {
    input: &'de str,
    at: usize,
    len: usize,
    error: PhantomData<E>,
}

/// A seed that asks its deserializer for `$method`: what a replayed key is asked for.
macro_rules! replayed {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
            struct Ask<V>(V);
            impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Ask<V> {
                type Value = V::Value;
                fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
                    d.$method(self.0)
                }
            }
            replay_key(self.input, self.at, self.len, Ask(visitor))
        }
    )*};
}

impl<'de, E: de::Error> de::Deserializer<'de> for FirstKey<'de, E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        let raw = &self.input[self.at..self.at + self.len];
        match raw.get(1..raw.len().saturating_sub(1)) {
            Some(key) if !key.contains('\\') => visitor.visit_borrowed_str(key),
            _ => {
                struct Any<V>(V);
                impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Any<V> {
                    type Value = V::Value;
                    fn deserialize<D: de::Deserializer<'de>>(
                        self,
                        d: D,
                    ) -> Result<V::Value, D::Error> {
                        d.deserialize_any(self.0)
                    }
                }
                replay_key(self.input, self.at, self.len, Any(visitor))
            }
        }
    }

    // What serde_json's map key reads as a string, as it does.
    serde::forward_to_deserialize_any! {
        char str string unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }

    // Numbers, booleans and the rest have serde_json's own rules for keys.
    replayed!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_option,
        deserialize_bytes,
        deserialize_byte_buf
    );

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        struct Ask<V>(&'static str, V);
        impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Ask<V> {
            type Value = V::Value;
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
                d.deserialize_newtype_struct(self.0, self.1)
            }
        }
        replay_key(self.input, self.at, self.len, Ask(name, visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        struct Ask<V>(&'static str, &'static [&'static str], V);
        impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Ask<V> {
            type Value = V::Value;
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
                d.deserialize_enum(self.0, self.1, self.2)
            }
        }
        replay_key(self.input, self.at, self.len, Ask(name, variants, visitor))
    }
}

/// Deserializes the key at `input[at..at + len]`, the first of its object, with `seed`: serde_json
/// reads the text from the object's brace to the end of the key as a map, so the key gets
/// serde_json's own map-key rules. That map is unfinished by design; its end-of-input error is
/// expected and ignored once the key is out.
fn replay_key<'de, K: DeserializeSeed<'de>, E: de::Error>(
    input: &'de str,
    at: usize,
    len: usize,
    seed: K,
) -> Result<K::Value, E> {
    let brace = input[..at]
        .trim_end_matches([' ', '\t', '\n', '\r'])
        .len()
        .checked_sub(1)
        .filter(|&i| input.as_bytes()[i] == b'{')
        .ok_or_else(|| E::custom("map key not after an opening brace"))?;
    let mut de = serde_json::Deserializer::from_str(&input[brace..at + len]);
    let mut key = None;
    let result = de::Deserializer::deserialize_map(
        &mut de,
        KeyOnly {
            seed,
            key: &mut key,
        },
    );
    match (key, result) {
        (Some(key), _) => Ok(key),
        (None, Err(e)) => Err(E::custom(without_position(&e))),
        (None, Ok(())) => Err(E::custom("map key missing")),
    }
}

/// The message of a serde_json error without its position, which is relative to a replayed
/// fragment: the outer deserializer adds the position in the payload.
fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if e.line() == 0 {
        return message;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&suffix) {
        Some(m) => m.to_owned(),
        None => message,
    }
}

/// Reads one key of a map with the application's seed, and stops.
struct KeyOnly<'k, K, V> {
    seed: K,
    key: &'k mut Option<V>,
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for KeyOnly<'_, K, K::Value> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        *self.key = map.next_key_seed(self.seed)?;
        Ok(())
    }
}

/// Wraps the deserializer of a value a map, sequence or enum holds.
struct Seed<'de, S> {
    seed: S,
    ctx: Ctx<'de>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'de, S> {
    type Value = S::Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Deserializer {
            inner: d,
            ctx: self.ctx,
        })
    }
}

/// Wraps an enum's content (a variant name is never a placeholder).
struct Enum<'de, A> {
    data: A,
    ctx: Ctx<'de>,
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'de, A> {
    type Error = A::Error;
    type Variant = Variant<'de, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.data.variant_seed(seed)?;
        Ok((
            value,
            Variant {
                variant,
                ctx: self.ctx,
            },
        ))
    }
}

struct Variant<'de, A> {
    variant: A,
    ctx: Ctx<'de>,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<'de, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.variant.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.variant.newtype_variant_seed(Seed {
            seed,
            ctx: self.ctx,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = Visit {
            visitor,
            ctx: self.ctx,
            hint: Hint::Other,
        };
        self.variant.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = Visit {
            visitor,
            ctx: self.ctx,
            hint: Hint::Other,
        };
        self.variant.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::deserialize;
    use bytes::Bytes;

    #[test]
    fn a_num_out_of_range_is_an_error_not_a_panic() {
        let att = [Bytes::from_static(b"a")];
        for json in [
            r#"[{"_placeholder":true,"num":1}]"#,
            r#"[{"_placeholder":true,"num":18446744073709551615}]"#,
            r#"[{"num":"0","_placeholder":true}]"#,
            r#"{"a":[{"_placeholder":true,"num":-1}]}"#,
        ] {
            let e = deserialize::<serde_json::Value>(json, &att).unwrap_err();
            assert!(e.is_data(), "{json}: {e}");
            assert!(e.to_string().contains("invalid placeholder"), "{json}: {e}");
            assert!(deserialize::<Vec<Bytes>>(json, &att).is_err());
        }
    }
}
