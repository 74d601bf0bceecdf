// Memory stays bounded: oversized bodies and messages are refused without being buffered,
// and repeating them does not grow the server's resident memory.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  SIO, EIO, MAX_PAYLOAD, sleep, show, WsClient, PollingClient, pollingHandshake, streamPost, rawWebSocket,
  frameHeader, streamUntilClosed, closeAll, sioConnect, assertAlive, assertProcessUp, rss,
} from './lib.mjs';

after(closeAll);

const OVER = MAX_PAYLOAD + 1000;
const CAP = 32 * 1024 * 1024; // what a server that keeps reading would have swallowed

/**
 * An oversized POST on a fresh session. A server that answers 413 and closes at once can race
 * our next write (EPIPE loses the answer on our side): such an attempt is tried again, up to
 * three times, before its error counts.
 */
async function oversizedPost(srv, chunked, size = OVER) {
  let r;
  for (let attempt = 0; attempt < 3; attempt++) {
    const { sid } = await pollingHandshake(srv);
    r = await streamPost(srv, sid, chunked ? { cap: 4 * MAX_PAYLOAD } : { contentLength: size, cap: size });
    if (r.status !== undefined || !/EPIPE|ECONNRESET/.test(r.error)) break;
    console.log(`${srv.name}: oversized POST attempt ${attempt + 1} lost its answer (${r.error}); again`);
  }
  return r;
}

async function oversizedWs(srv, binary, size = OVER) {
  const c = await WsClient.open(srv);
  await c.nextText(); // open packet
  const sent = Date.now();
  if (binary) c.sendBinary(Buffer.alloc(size, 7));
  else c.send(`4${'z'.repeat(size - 1)}`);
  // well before protocol_server's connectTimeout (1000 ms) could be the reason
  const info = await c.waitClosed(700);
  assert.ok(info.at - sent < 700, `closed ${info.at - sent} ms after the oversized message`);
  return { c, info };
}

async function hugeFrame(srv) {
  const { socket } = await rawWebSocket(srv);
  socket.write(frameHeader(0x1, 2 ** 30)); // a text frame declaring 1 GiB
  return streamUntilClosed(socket, Buffer.alloc(64 * 1024, 0x34), CAP);
}

let bystander;
before(async () => {
  bystander = await sioConnect('websocket');
});

for (const srv of [SIO, EIO]) {
  describe(`oversized input (${srv.name})`, () => {
    it('a POST declaring more than maxPayload gets 413', async () => {
      const r = await oversizedPost(srv, false);
      assert.equal(r.status, 413, `expected 413, got ${JSON.stringify({ ...r, body: show(r.body) })}`);
    });

    it('a chunked POST growing past maxPayload gets 413 without being read to the end', async () => {
      const r = await oversizedPost(srv, true);
      assert.equal(r.status, 413, `expected 413, got ${JSON.stringify({ ...r, body: show(r.body) })}`);
    });

    it('a text WebSocket message over maxPayload closes that WebSocket', async () => {
      const { c } = await oversizedWs(srv, false);
      assert.ok(!c.log.some((m) => !m.binary && m.data.length > 1000), 'the oversized message was echoed');
    });

    it('a binary WebSocket message over maxPayload closes that WebSocket', async () => {
      await oversizedWs(srv, true);
    });

    it('a WebSocket frame declaring 1 GiB is cut off early', async () => {
      const r = await hugeFrame(srv);
      assert.ok(r.closed, `the server was still reading after ${r.written} bytes of a 1 GiB frame`);
      assert.ok(r.written < CAP, `the server read ${r.written} bytes before closing`);
    });

    // A message of exactly maxPayload bytes: on protocol_server a `message` event of that size
    // (answered with message-back), on engine_echo a text message (echoed).
    const exact = () => {
      if (srv === EIO) return { text: `4${'m'.repeat(MAX_PAYLOAD - 1)}`, answer: (t) => t.length === MAX_PAYLOAD };
      const head = '42["message","';
      const text = `${head}${'m'.repeat(MAX_PAYLOAD - head.length - 2)}"]`;
      return { text, answer: (t) => t === `42["message-back","${'m'.repeat(MAX_PAYLOAD - head.length - 2)}"]` };
    };
    const client = (transport) => (srv === SIO ? sioConnect(transport) : srv === EIO && transport === 'websocket' ? openEcho() : PollingClient.connect(EIO));
    const openEcho = async () => {
      const c = await WsClient.open(EIO);
      await c.nextText();
      return c;
    };

    it('a POST body of exactly maxPayload bytes is accepted, one byte more gets 413', async () => {
      const { text, answer } = exact();
      assert.equal(Buffer.byteLength(text), MAX_PAYLOAD);
      const c = await client('polling');
      const ok = await c.post(text);
      assert.equal(ok.status, 200, `${MAX_PAYLOAD} bytes: ${ok.status} ${show(ok.body)}`);
      const got = await c.nextText(5000);
      assert.ok(answer(got), `unexpected answer to a message of maxPayload bytes: ${show(got)}`);
      await c.close();
      const r = await oversizedPost(srv, false, MAX_PAYLOAD + 1);
      assert.equal(r.status, 413, `${MAX_PAYLOAD + 1} bytes: ${JSON.stringify({ ...r, body: show(r.body) })}`);
    });

    it('a WebSocket message of exactly maxPayload bytes is accepted, one byte more closes', async () => {
      const { text, answer } = exact();
      const c = await client('websocket');
      c.send(text);
      const got = await c.nextText(5000);
      assert.ok(answer(got), `unexpected answer to a message of maxPayload bytes: ${show(got)}`);
      await c.close();
      await oversizedWs(srv, false, MAX_PAYLOAD + 1);
    });

    it('the server is up and other clients unaffected', async () => {
      assertProcessUp(srv);
      await assertAlive(bystander, `after-${srv.name}`);
    });
  });
}

describe('resident memory after repeated oversized input', () => {
  for (const srv of [SIO, EIO]) {
    it(`${srv.name}: 20 rounds of every oversized input grow RSS by less than 50 MB`, { skip: srv.pid === undefined && 'no server pid' }, async () => {
      // warm up allocator arenas and buffers once
      await oversizedPost(srv, false);
      await oversizedWs(srv, false);
      await sleep(200);
      const before = rss(srv);
      for (let i = 0; i < 20; i++) {
        const posts = await Promise.all([oversizedPost(srv, false), oversizedPost(srv, true)]);
        for (const p of posts) assert.equal(p.status, 413, `round ${i}: ${JSON.stringify({ ...p, body: show(p.body) })}`);
        await Promise.all([oversizedWs(srv, false), oversizedWs(srv, true)]);
        const h = await hugeFrame(srv);
        assert.ok(h.closed && h.written < CAP, `round ${i}: huge frame read to ${h.written} bytes`);
      }
      await sleep(300);
      const afterRss = rss(srv);
      const grown = (afterRss - before) / 1024 / 1024;
      console.log(`${srv.name}: VmRSS ${(before / 1048576).toFixed(1)} MB → ${(afterRss / 1048576).toFixed(1)} MB`);
      assert.ok(grown < 50, `VmRSS grew by ${grown.toFixed(1)} MB`);
      assertProcessUp(srv);
      await assertAlive(bystander, `rss-${srv.name}`);
    });
  }
});
