//! The encode side of typed binary arguments: the input builds a value of application types
//! holding byte buffers at any depth (`Bytes`, `Option<Bytes>`, `Vec<Bytes>`, a `serialize_bytes`
//! buffer, lists, maps, nested structs and enums); it is emitted and acked under both parsers,
//! received by a fresh decoder, and its arguments must deserialize back into the same value;
//! then emitted again as received (`Event::args_raw`: whole, nested, without the first) with
//! the same result.
//! Nothing may panic.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use roomcast::packet::{Decoder, Encoded, Event, Packet, Parser, Payload};
use roomcast::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What `serde_bytes` does with a `Vec<u8>`.
mod as_bytes {
    use serde::de::{Deserializer, Error, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Model {
    Unit,
    Flag(bool),
    Int(i64),
    Text(String),
    Bin(Bytes),
    MaybeBin(Option<Bytes>),
    Bins(Vec<Bytes>),
    #[serde(with = "as_bytes")]
    Buf(Vec<u8>),
    List(Vec<Model>),
    Map(BTreeMap<String, Model>),
    Record { data: Bytes, next: Box<Model> },
}

/// Reads the input front to back; past its end every read gives zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, max: usize) -> &[u8] {
        let n = (self.byte() as usize % (max + 1)).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn bytes(&mut self) -> Bytes {
        Bytes::copy_from_slice(self.take(40))
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.take(12)).into_owned()
    }

    fn count(&mut self) -> usize {
        self.byte() as usize % 4
    }

    fn model(&mut self, depth: usize) -> Model {
        let kind = self.byte() % if depth == 0 { 8 } else { 11 };
        match kind {
            0 => Model::Unit,
            1 => Model::Flag(self.byte() & 1 == 1),
            2 => Model::Int(i64::from_le_bytes([
                self.byte(),
                self.byte(),
                self.byte(),
                self.byte(),
                self.byte(),
                self.byte(),
                self.byte(),
                self.byte(),
            ])),
            3 => Model::Text(self.text()),
            4 => Model::Bin(self.bytes()),
            5 => Model::MaybeBin((self.byte() & 1 == 1).then(|| self.bytes())),
            6 => Model::Bins((0..self.count()).map(|_| self.bytes()).collect()),
            7 => Model::Buf(self.take(16).to_vec()),
            8 => Model::List((0..self.count()).map(|_| self.model(depth - 1)).collect()),
            9 => Model::Map(
                (0..self.count())
                    .map(|_| (self.text(), self.model(depth - 1)))
                    // Placeholders' own key: an application map cannot use it (refused).
                    .filter(|(k, _)| k != "_placeholder")
                    .collect(),
            ),
            _ => Model::Record {
                data: self.bytes(),
                next: Box::new(self.model(depth - 1)),
            },
        }
    }
}

fn limits() -> Limits {
    Limits {
        max_attachments: usize::MAX,
        ..Limits::default()
    }
}

fn receive(e: &Encoded) -> Packet {
    if let Some(bytes) = e.binary() {
        return Parser::Msgpack
            .decoder(limits())
            .push_binary(bytes.clone())
            .expect("our msgpack decodes")
            .expect("one message, one packet");
    }
    let mut d = Decoder::new(limits());
    let text = e.text().slice(1..e.text().len()).expect("a 4 in front");
    let mut out = d.push_text(text).expect("our text decodes");
    for a in e.attachments() {
        assert!(out.is_none(), "complete before its attachments");
        out = d.push_binary(a.clone()).expect("our attachments decode");
    }
    out.expect("complete after the last attachment")
}

fn event(e: &Encoded) -> Event {
    match receive(e) {
        Packet::Event { event, .. } => event,
        p => panic!("not an event: {p:?}"),
    }
}

fn ack(e: &Encoded) -> Payload {
    match receive(e) {
        Packet::Ack { data, .. } => data,
        p => panic!("not an ack: {p:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let args: Vec<Model> = (0..input.count()).map(|_| input.model(12)).collect();
    for parser in [Parser::Json, Parser::Msgpack] {
        let e = parser.event("/", None, "m", &args).expect("encodes");
        let received = event(&e);
        assert_eq!(received.args::<Vec<Model>>().expect("typed"), args);
        let a = parser.ack("/x", 7, &args).expect("encodes");
        assert_eq!(ack(&a).deserialize::<Vec<Model>>().expect("typed"), args);
        for to in [Parser::Json, Parser::Msgpack] {
            let again = event(&to.event("/", None, "n", &received.args_raw()).expect("encodes"));
            assert_eq!(again.args::<Vec<Model>>().expect("typed"), args);
            let nested = to
                .event("/", None, "n", &(1, received.args_raw()))
                .expect("encodes");
            let (one, got): (u8, Vec<Model>) = event(&nested).args().expect("typed");
            assert_eq!((one, got), (1, args.clone()));
            let rest = to
                .event("/", None, "n", &received.args_raw().skip(1))
                .expect("encodes");
            let want = args.get(1..).unwrap_or_default();
            assert_eq!(event(&rest).args::<Vec<Model>>().expect("typed"), want);
        }
    }
});
