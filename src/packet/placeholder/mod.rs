//! Binary placeholders `{"_placeholder":true,"num":<i>}`: the JSON stand-in for the `i`-th
//! attachment of a binary packet.
//!
//! A placeholder is an object with exactly the two members `_placeholder`, whose value is `true`,
//! and `num`, an integer below the attachment count, in either order. The reference treats any
//! object whose last `_placeholder` member is `true` as one, extra members and all; the decoder
//! refuses a binary packet holding such an object in any other shape ([`walk`]), so on a decoded
//! payload a placeholder is told from any other object by its first two members ([`shape`]),
//! which lets the deserializer ([`de`]) stream every other object. [`ser`] writes them.
//!
//! Nothing here knows about packets: these modules see JSON text, attachments and `serde`.

pub(crate) mod de;
pub(crate) mod ser;
mod shape;
pub(crate) mod walk;
