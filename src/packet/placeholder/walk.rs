//! Validating placeholders while a binary packet is decoded: one pass over the whole JSON value
//! that checks every object whose `_placeholder` is `true` is a placeholder of the one shape
//! [`super`] defines, with a `num` below the attachment count.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;

/// What a walked JSON value was, as far as placeholder checks care.
#[derive(Clone, Copy)]
enum Seen {
    True,
    Int(u64),
    Other,
}

/// Walks a whole JSON value. On an invalid placeholder it sets `invalid` and stops serde with a
/// generic error: the caller reports the placeholder, not serde's message.
#[derive(Clone, Copy)]
pub(crate) struct Walk<'p> {
    attachments: usize,
    invalid: &'p Cell<bool>,
}

impl<'p> Walk<'p> {
    pub(crate) fn new(attachments: usize, invalid: &'p Cell<bool>) -> Self {
        Walk {
            attachments,
            invalid,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Value(self)).map(drop)
    }
}

/// The value walk, returning what the value was to the object holding it.
#[derive(Clone, Copy)]
struct Value<'p>(Walk<'p>);

impl<'de> DeserializeSeed<'de> for Value<'_> {
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

impl<'de> Visitor<'de> for Value<'_> {
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
        let (mut members, mut flags, mut nums) = (0usize, 0usize, 0usize);
        let (mut flag, mut num) = (false, None);
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value_seed(self)?;
            members += 1;
            match key {
                Key::Placeholder => {
                    flags += 1;
                    flag = matches!(value, Seen::True);
                }
                Key::Num => {
                    nums += 1;
                    num = Some(value);
                }
                Key::Other => {}
            }
        }
        // As in JavaScript, the last `_placeholder` decides whether the object is one.
        if flag {
            let shape = members == 2 && flags == 1 && nums == 1;
            let Walk {
                attachments,
                invalid,
            } = self.0;
            if !shape || !matches!(num, Some(Seen::Int(n)) if n < attachments as u64) {
                invalid.set(true);
                return Err(de::Error::custom("invalid placeholder"));
            }
        }
        Ok(Seen::Other)
    }
}
