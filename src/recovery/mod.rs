//! Connection state recovery's two stores, bounded: the log of packets a dropped client may
//! have missed ([`log`]) and the sessions of dropped sockets ([`sessions`]), with the offsets
//! that name logged packets on the wire ([`offset`]). Pure data structures on the virtual
//! clock; the server's glue is in `server::recovery`.

pub(crate) mod log;
pub(crate) mod offset;
pub(crate) mod sessions;
