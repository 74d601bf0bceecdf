#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into fuzz/corpus/<target>, in that target's input
format: every example of the Engine.IO v4 and Socket.IO v5 specifications (docs/engine.io-protocol/
v4-current.md and docs/socket.io-protocol/v5-current.md of socketio/socket.io), every attack of
DESIGN.md section 4 and of tests/packet_codec.rs and tests/engine_codec.rs, and the placeholder
shapes the streaming deserializer tells apart. Files are named by their SHA-1, as libFuzzer names
what it adds. Afterwards minimize with `cargo +nightly fuzz cmin <target>` (see fuzz/README.md).

The `server` target is not seeded here. The `msgpack_packet` seeds are msgpack packets written by
a small notepack-like writer below (`mp`), as socket.io-msgpack-parser 3.0 sends them.
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def ph(i, order="pn"):
    return ('{"_placeholder":true,"num":%s}' % i) if order == "pn" else ('{"num":%s,"_placeholder":true}' % i)


# Socket.IO packets as the decoder receives them (without the Engine.IO `4`).
SPEC_SOCKETIO = [
    # Packet encoding examples.
    "0",
    '0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}',
    '4{"message":"Not authorized"}',
    '2["foo"]',
    '2/admin,["bar"]',
    '51-["baz",{"_placeholder":true,"num":0}]',
    '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
    '212["foo"]',
    '3/admin,13["bar"]',
    '61-15["bar",{"_placeholder":true,"num":0}]',
    "1",
    "1/admin,",
    # Exchange examples.
    '0/admin,{"token":"123"}',
    '0{"sid":"wZX3oN0bSVIhsaknAAAI"}',
    '0/admin,{"sid":"iLnRaVGHY4B75TeVAAAB"}',
    "312[]",
    '2/admin,13["foo"]',
    '51-14["foo",{"_placeholder":true,"num":0}]',
    '314["bar"]',
    '215["foo"]',
    # Sample session.
    '2["hey","Jude"]',
    '2["hello"]',
    '2["world"]',
    "0/admin,",
    '0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}',
    '2/admin,1["tellme"]',
    '61-/admin,1[{"_placeholder":true,"num":0}]',
]

DEEP = 200
ATTACKS_SOCKETIO = [
    # A placeholder num that is not an integer in range.
    '51-["a",{"_placeholder":true,"num":"splice"}]',
    '51-["a",{"_placeholder":true,"num":1}]',
    '51-["a",{"_placeholder":true,"num":-1}]',
    '51-["a",{"_placeholder":true,"num":0.5}]',
    '51-["a",{"_placeholder":true}]',
    '51-["a",{"_placeholder":true,"num":{"valueOf":0}}]',
    '51-["a",[[{"_placeholder":true,"num":99}]]]',
    '61-1[{"_placeholder":true,"num":"0"}]',
    '51-["a",{"_placeholder":1,"num":"x"}]',
    # An event name that is an object; reserved names.
    '2[{"toString":"foo"}]',
    '2["\\u0063onnect"]',
    # Attachment counts beyond the limit, huge digit runs.
    '53-["a"]',
    '54-["a"]',
    '511-["a"]',
    '510-["a"]',
    '599999999999999999999999999999-["a"]',
    '218446744073709551615["a"]',
    '218446744073709551616["a"]',
    "2" + "9" * 1000 + '["a"]',
    "5" + "9" * 1000 + '-["a"]',
    # Nesting beyond serde_json's limit, with and without attachments.
    '2["a",' + "[" * DEEP + "]" * DEEP + "]",
    '51-["a",' + "[" * DEEP + "]" * DEEP + "]",
    # Malformed JSON.
    '2["a",]',
    '2["a"] x',
    '2["a",{"b":}]',
    '2["a","\\u12"]',
    '2["a","\x01"]',
    '0{"a":1',
    '2["a',
    "31[1,2",
    '4{"message":NaN}',
    # Placeholder shapes the decoder refuses and the deserializer tells apart.
    '51-["a",{"_placeholder":true,"num":0,"x":1}]',
    '51-["a",{"x":1,"_placeholder":true,"num":0}]',
    '51-["a",{"_placeholder":true,"num":0,"num":0}]',
    '51-["a",{"_placeholder":false,"_placeholder":true,"num":0}]',
    '51-["a",{"_placeholder":true,"_placeholder":false,"num":0}]',
    '51-["a",{"num":0,"_placeholder":true}]',
    '51-["a",{"n\\u0075m":0,"_placeholder":true}]',
    '51-["a",{ "_placeholder" : true , "num" : 0 }]',
    '51-["a",{"num":0}]',
    '51-["a",{"_placeholder":false,"num":0}]',
    '52-["a",{"7":%s,"-3":%s}]' % (ph(0), ph(1)),
    '51-["a",%s%s%s]' % ("[" * 100, ph(0), "]" * 100),
    '51-["a",%s%s%s]' % ('{"k":' * 100, ph(0), "}" * 100),
]
ATTACKS_SOCKETIO += ['2["%s"]' % n for n in
                     ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]]

# Typed shapes for the binary_args target (see its `Upload`, `Part` and `Loose`).
TYPED = [
    '53-["upload",{"data":%s,"parts":[%s,%s],"thumb":null,"name":"a.png","size":3,"ratio":0.5,"meta":{"k":[%s]}}]'
    % (ph(0), ph(1), ph(2, "np"), ph(0)),
    '52-["parts",[{"Blob":%s},{"Pair":[%s,-1]},{"Named":{"data":%s,"tag":"t"}},"Empty"]]' % (ph(0), ph(1), ph(0)),
    '52-["loose",[%s,"t",1.5,{"a":%s}]]' % (ph(0), ph(1)),
    '53-["tuple","s",%s,[%s],%s,-7,{"v":%s}]' % (ph(0), ph(1), ph(2), ph(0)),
    '52-["opt",%s,null,[%s,%s]]' % (ph(0), ph(1), ph(0)),
    '52-["num","s",1,{"Blob":%s}]' % ph(1),
    '62-9[{"data":%s,"thumb":%s}]' % (ph(0), ph(1)),
    '61-9["ok",%s,"x"]' % ph(0, "np"),
]

ENGINE_TEXT = [
    '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}',
    '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}',
    "1", "2", "3", "2probe", "3probe", "4hello", "4world", "5", "6", "4some message text",
    # Malformed.
    "", "7", "x4", "\u00e9", "4" + "a" * 64,
]
ENGINE_BINARY = [b"\x01\x02\x03\x04", b"\x00" * 9, b"\xff" * 65]

POLLING = [
    b"4hello\x1e2\x1e4world",
    b"4hello\x1ebAQIDBA==",
    b'42["hello"]\x1e42["world"]',
    b"40",
    b'40{"sid":"wZX3oN0bSVIhsaknAAAI"}',
    b'42["hey","Jude"]',
    b'0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}',
    b"6", b"1", b"2\x1e3",
    # Malformed.
    b"", b"4a\x1e", b"4a\x1e9", b"4a\x1eb!!!", b"4a\xff", b"4a\x1e9\x1e4b", b"4abc\x1e4de", b"4abc\x1e4def",
    b"\x1e" * 1000, b"b" + b"A" * 1000,
]


def reassembly(*messages):
    """binary_reassembly input: per message a kind byte (low bit set: binary), a length byte, the body."""
    out = b""
    for m in messages:
        binary = isinstance(m, bytes)
        body = m if binary else m.encode()
        assert len(body) < 256, body
        out += bytes([1 if binary else 0, len(body)]) + body
    return out


REASSEMBLY = [
    reassembly('51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"),
    reassembly('52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01\x02", b"\x03\x04"),
    reassembly('61-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"),
    reassembly('61-/admin,1[{"_placeholder":true,"num":0}]', b"\x00"),
    reassembly('2["foo"]', '212["foo"]', '3/admin,13["bar"]'),
    # A flood of attachment frames after the last one announced.
    reassembly('51-["a",{"_placeholder":true,"num":0}]', b"1", b"2", b"3"),
    # Text in the middle of a binary packet; binary with no header.
    reassembly('52-["a"]', b"1", '2["b"]'),
    reassembly(b"x"),
    # Attachment counts at and beyond the target's limit of 4.
    reassembly('54-["a"]', b"1", b"2", b"3", b"4"),
    reassembly('55-["a"]'),
    reassembly('599999999999999999999999999999-["a"]', b"1"),
    reassembly('51-["a",{"_placeholder":true,"num":1}]', b"1"),
]


class Ext:
    """A msgpack extension value; `fixed` picks fixext over ext8 where the length allows."""

    def __init__(self, ty, data, fixed=True):
        self.ty, self.data, self.fixed = ty, data, fixed


UNDEFINED = Ext(0, b"\x00")


def mp(v):
    """msgpack of `v` as notepack.io writes it (smallest widths; dict keys in order)."""
    import struct
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if v >= 0:
            for fmt, tag in ((">B", 0xcc), (">H", 0xcd), (">I", 0xce), (">Q", 0xcf)):
                try:
                    return bytes([tag]) + struct.pack(fmt, v)
                except struct.error:
                    pass
        for fmt, tag in ((">b", 0xd0), (">h", 0xd1), (">i", 0xd2), (">q", 0xd3)):
            try:
                return bytes([tag]) + struct.pack(fmt, v)
            except struct.error:
                pass
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        head = bytes([0xa0 | n]) if n < 32 else (b"\xd9" + bytes([n]) if n < 256 else b"\xda" + struct.pack(">H", n))
        return head + b
    if isinstance(v, bytes):
        n = len(v)
        return (b"\xc4" + bytes([n]) if n < 256 else b"\xc5" + struct.pack(">H", n)) + v
    if isinstance(v, Ext):
        n = len(v.data)
        fix = {1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}
        if v.fixed and n in fix:
            head = bytes([fix[n]])
        else:
            head = b"\xc7" + bytes([n])
        return head + struct.pack(">b", v.ty) + v.data
    if isinstance(v, list):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


def date(ms):
    import struct
    return Ext(0, struct.pack(">q", ms))


# socket.io-msgpack-parser packets (msgpack_packet target): every packet type as the JS client
# and Node write them, notepack's extensions, and what checkPacket (and roomcast) refuse.
MSGPACK = [mp(p) for p in [
    {"type": 0, "data": UNDEFINED, "nsp": "/"},
    {"type": 0, "data": {"token": "123"}, "nsp": "/admin"},
    {"type": 0, "data": {"sid": "wZX3oN0bSVIhsaknAAAI", "pid": UNDEFINED}, "nsp": "/"},
    {"type": 0, "data": {"sid": "wZX3oN0bSVIhsaknAAAI", "pid": "p"}, "nsp": "/"},
    {"type": 1, "nsp": "/admin"},
    {"type": 2, "nsp": "/", "data": ["hello", "you"]},
    {"type": 2, "data": ["message", {"text": "hello world", "user": "alice", "ts": 1700000000}], "options": {"compress": True}, "nsp": "/"},
    {"type": 2, "data": ["foo", b"\x01\x02\x03"], "options": {"compress": True}, "id": 12, "nsp": "/admin"},
    {"type": 2, "data": ["d", date(0), UNDEFINED, {"a": UNDEFINED, 1: 2}, Ext(5, b"\x09"), Ext(0, b"ab", fixed=False)], "nsp": "/"},
    {"type": 2, "data": [12, 1.5, None, True, -1, 2 ** 64 - 1, -(2 ** 63)], "nsp": "/"},
    {"type": 3, "id": 12, "data": [b"\x00" * 20, "after"], "nsp": "/"},
    {"type": 3, "id": 0, "data": [], "nsp": "/"},
    {"type": 4, "data": {"message": "Not authorized", "data": {"code": 1}}, "nsp": "/"},
    {"type": 4, "data": "Invalid namespace", "nsp": "/random"},
    # Refused.
    {"type": 5, "data": ["x"], "nsp": "/"},
    {"type": 2.0, "data": ["x"], "nsp": "/"},
    {"type": 2, "data": ["x"], "nsp": 1},
    {"type": 2, "data": ["x"], "nsp": "no-slash"},
    {"type": 2, "data": ["x"], "nsp": "/a,b"},
    {"type": 2, "data": ["x"], "id": -1, "nsp": "/"},
    {"type": 2, "data": ["x"], "id": "1", "nsp": "/"},
    {"type": 2, "data": [], "nsp": "/"},
    {"type": 2, "data": [{"toString": "foo"}], "nsp": "/"},
    {"type": 2, "data": ["connect"], "nsp": "/"},
    {"type": 2, "data": "x", "nsp": "/"},
    {"type": 2, "data": ["x", {"_placeholder": True, "num": 0}], "nsp": "/"},
    {"type": 2, "data": ["x"] + [b"\x01"] * 11, "nsp": "/"},
    {"type": 3, "data": ["x"], "nsp": "/"},
    {"type": 1, "data": ["x"], "nsp": "/"},
    {"type": 0, "data": [1], "nsp": "/"},
    {"type": 0, "data": {"bin": b"\x01"}, "nsp": "/"},
    {"type": 4, "data": 1, "nsp": "/"},
    {"type": 2, "data": ["x", [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], "nsp": "/"},
    ["not", "a", "map"],
]] + [
    b"", b"\xc1", mp({"type": 0, "nsp": "/"}) + b"\x00", b"\x81\xa4type",
    b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdd\xff\xff\xff\xff",
    b"\x82\xa4type\x02\xa3nsp\xa1/\xa4data\x91" + b"\x91" * 200 + b"\xc0",
]


def write(target, inputs):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for data in inputs:
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    print(f"{target}: {len(inputs)} seeds")


def main():
    sio = SPEC_SOCKETIO + ATTACKS_SOCKETIO
    write("socketio_packet", sio + TYPED)
    write("binary_args", sio + TYPED)
    write("engine_packet",
          [b"\x00" + t.encode() for t in ENGINE_TEXT]
          + [b"\x00" + b"4" + s.encode() for s in sio if len(s) < 100]
          + [b"\x01" + b for b in ENGINE_BINARY])
    write("polling_payload", POLLING + [b"4" + s.encode() for s in sio])
    write("binary_reassembly", REASSEMBLY + [reassembly(s) for s in sio + TYPED if len(s.encode()) < 256])
    write("msgpack_packet", MSGPACK)


if __name__ == "__main__":
    sys.exit(main())
