// @example typed_binary
//
// Typed arguments with binary, both ways (issue 10, item 7): the official client sends
// Buffers, ArrayBuffers and Uint8Arrays nested in objects and arrays; the server reads them into
// a struct with `bytes::Bytes` fields and answers (ack and event) with a struct whose byte
// buffers are at the same places, reversed; `relay` comes back as it went (`Event::args_raw`).
// typed_binary_msgpack.test.mjs runs the same with `socket.io-msgpack-parser`.

import { describe, test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { client, closeAll, connected, once, asBuffer, isBinary, PARSER } from "./lib.mjs";

const T = { timeout: 10000 };

const MODES = [
  { name: "websocket", opts: { transports: ["websocket"] } },
  { name: "polling", opts: { transports: ["polling"], upgrade: false } },
];

const bytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 256));
const rev = (b) => Buffer.from(asBuffer(b)).reverse();

/**
 * An upload with binary of every kind the client sends, at several depths: eight buffers, so
 * that the receipt (these reversed, and the two large ones as they came) has ten attachments,
 * the most the official client takes in one packet.
 */
function upload() {
  const thumb = bytes(16, 2);
  const part = bytes(5, 3);
  return {
    name: "photo.png",
    file: bytes(300, 1), // Buffer
    meta: {
      thumb: thumb.buffer.slice(thumb.byteOffset, thumb.byteOffset + thumb.byteLength), // ArrayBuffer
      parts: [new Uint8Array(part), bytes(70, 4)], // Uint8Array, Buffer
      note: bytes(0, 0), // empty
      by_name: { a: new Uint8Array(bytes(2, 6)) },
    },
    chunks: [
      { index: 0, data: bytes(8, 8) },
      { index: 1, data: new Uint8Array(bytes(9, 9)) },
    ],
  };
}

/** Asserts that `got` is binary holding `want`'s bytes. */
function same(got, want, where) {
  assert.ok(isBinary(got), `${where}: not binary: ${JSON.stringify(got)?.slice(0, 200)}`);
  assert.deepEqual(asBuffer(got), asBuffer(want), where);
}

/** Checks the server's receipt for `up`: the upload with each buffer reversed, and the list. */
function checkReceipt(r, up) {
  assert.equal(r.name, up.name);
  const all = [
    up.file,
    up.meta.thumb,
    ...up.meta.parts,
    up.meta.note,
    up.meta.by_name.a,
    ...up.chunks.map((c) => c.data),
  ];
  assert.equal(r.bytes, all.reduce((n, b) => n + asBuffer(b).length, 0));
  const u = r.upload;
  same(u.file, rev(up.file), "upload.file");
  same(u.meta.thumb, rev(up.meta.thumb), "upload.meta.thumb");
  assert.equal(u.meta.parts.length, 2);
  u.meta.parts.forEach((p, i) => same(p, rev(up.meta.parts[i]), `upload.meta.parts[${i}]`));
  same(u.meta.note, rev(up.meta.note), "upload.meta.note");
  same(u.meta.by_name.a, rev(up.meta.by_name.a), "by_name.a");
  assert.deepEqual(u.chunks.map((c) => c.index), [0, 1]);
  u.chunks.forEach((c, i) => same(c.data, rev(up.chunks[i].data), `upload.chunks[${i}].data`));
  assert.equal(r.stored.length, all.length);
  r.stored.forEach((s, i) => {
    const n = asBuffer(all[i]).length;
    assert.equal(s.kind, n >= 64 ? "large" : "small", `stored[${i}].kind`);
    assert.equal(s.size, n, `stored[${i}].size`);
    if (n >= 64) same(s.data, all[i], `stored[${i}].data`);
    else assert.equal(s.data, undefined);
  });
}

afterEach(() => closeAll());
after(() => closeAll());

for (const mode of MODES) {
  describe(`typed_binary (${PARSER} parser), ${mode.name}`, () => {
    test("a nested struct with binary goes up and comes back, as an ack and as an event", T, async () => {
      const socket = client("/", mode.opts);
      await connected(socket);
      const up = upload();
      const stored = once(socket, "stored", 5000);
      const ack = await socket.timeout(5000).emitWithAck("upload", up);
      assert.equal(ack.error, undefined, JSON.stringify(ack.error));
      checkReceipt(ack, up);
      const [event] = await stored;
      checkReceipt(event, up);
    });

    test("without an optional buffer, the receipt has null there", T, async () => {
      const socket = client("/", mode.opts);
      await connected(socket);
      const up = upload();
      delete up.meta.note;
      up.meta.by_name = {};
      const ack = await socket.timeout(5000).emitWithAck("upload", up);
      assert.equal(ack.error, undefined, JSON.stringify(ack.error));
      assert.equal(ack.upload.meta.note, null);
      assert.deepEqual(ack.upload.meta.by_name, {});
      same(ack.upload.file, rev(up.file), "file");
    });

    test("a struct with a missing buffer is refused with the reason", T, async () => {
      const socket = client("/", mode.opts);
      await connected(socket);
      const up = upload();
      delete up.file;
      const ack = await socket.timeout(5000).emitWithAck("upload", up);
      assert.match(ack.error, /file/);
    });

    test("relayed arguments come back as they went, binary at the same places", T, async () => {
      const socket = client("/", mode.opts);
      await connected(socket);
      const a = bytes(4, 1);
      const b = bytes(2, 2);
      const c = bytes(1, 3);
      const relayed = once(socket, "relayed", 5000);
      const args = ["x", { deep: [{ a }, [b]], n: 1 }, c, null];
      // Every argument of the answer (emitWithAck resolves with the first only).
      const back = await new Promise((resolve, reject) =>
        socket.timeout(5000).emit("relay", ...args, (err, ...got) => (err ? reject(err) : resolve(got))),
      );
      for (const got of [back, await relayed]) {
        assert.equal(got.length, 4);
        assert.equal(got[0], "x");
        same(got[1].deep[0].a, a, "deep[0].a");
        same(got[1].deep[1][0], b, "deep[1][0]");
        assert.equal(got[1].n, 1);
        same(got[2], c, "third argument");
        assert.equal(got[3], null);
      }
    });
  });
}
