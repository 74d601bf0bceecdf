// Engine.IO v4, from the protocol specification: handshake, request errors, heartbeat,
// long-polling, upgrade, and the echo of engine_echo. Raw HTTP and raw WebSocket frames only.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  SIO, EIO, PING_INTERVAL, PING_TIMEOUT, MAX_PAYLOAD,
  sleep, qs, show, httpRequest, assertHttpError, partialPost, pollingHandshake, splitPayload,
  WsClient, PollingClient, closeAll, assertOk, assertProcessUp, assertWsRefused,
} from './lib.mjs';

after(closeAll);

function checkOpen(open, upgrades, what) {
  assert.equal(typeof open.sid, 'string', `${what}: sid must be a string: ${JSON.stringify(open)}`);
  assert.ok(open.sid.length > 0, `${what}: sid must not be empty`);
  assert.deepEqual(open.upgrades, upgrades, `${what}: upgrades`);
  assert.equal(open.pingInterval, PING_INTERVAL, `${what}: pingInterval`);
  assert.equal(open.pingTimeout, PING_TIMEOUT, `${what}: pingTimeout`);
  assert.equal(open.maxPayload, MAX_PAYLOAD, `${what}: maxPayload`);
}

/** Reads GETs until `count` non-ping packets arrived (pings are answered). */
async function collect(srv, sid, count, timeout = 3000) {
  const got = [];
  const deadline = Date.now() + timeout;
  while (got.length < count) {
    assert.ok(Date.now() < deadline, `only ${got.length} of ${count} packets within ${timeout} ms: ${got.map((m) => show(m)).join(', ')}`);
    const res = await httpRequest(srv, { query: qs({ sid }), timeout });
    assert.equal(res.status, 200, `GET: ${res.status} ${show(res.body)}`);
    for (const p of splitPayload(res.body)) {
      if (p === '2') assertOk(await httpRequest(srv, { method: 'POST', query: qs({ sid }), body: '3' }), 'pong');
      else got.push(p);
    }
  }
  return got;
}

for (const srv of [EIO, SIO]) {
  describe(`handshake (${srv.name}, ${srv.path})`, () => {
    it('GET ?EIO=4&transport=polling answers 200 with an open packet', async () => {
      const res = await httpRequest(srv, { query: qs() });
      assert.equal(res.status, 200, `got ${res.status} ${show(res.body)}`);
      assert.equal(res.body[0], '0', `body must start with the open packet type 0: ${show(res.body)}`);
      checkOpen(JSON.parse(res.body.slice(1)), ['websocket'], 'polling open packet');
    });

    it('ignores extra query parameters (the cache-busting t=…)', async () => {
      const res = await httpRequest(srv, { query: qs({ t: 'N8hyd6w' }) });
      assert.equal(res.status, 200, `got ${res.status} ${show(res.body)}`);
      assert.equal(res.body[0], '0');
    });

    it('gives every session its own sid', async () => {
      const sids = new Set();
      for (let i = 0; i < 5; i++) sids.add((await pollingHandshake(srv)).sid);
      assert.equal(sids.size, 5);
    });

    it('over WebSocket the first frame is the open packet, with no upgrades', async () => {
      const c = await WsClient.open(srv);
      const first = await c.nextText();
      assert.equal(first[0], '0', `first frame must be an open packet: ${show(first)}`);
      checkOpen(JSON.parse(first.slice(1)), [], 'websocket open packet');
      await c.close();
    });
  });

  describe(`request errors (${srv.name})`, () => {
    it('missing transport: 400 code 0 "Transport unknown"', async () => {
      assertHttpError(await httpRequest(srv, { query: 'EIO=4' }), 0, 'Transport unknown', 'GET ?EIO=4');
    });

    it('unknown transport: 400 code 0 "Transport unknown"', async () => {
      assertHttpError(await httpRequest(srv, { query: qs({ transport: 'carrier-pigeon' }) }), 0, 'Transport unknown', 'transport=carrier-pigeon');
      assertHttpError(await httpRequest(srv, { query: qs({ transport: 'flashsocket' }) }), 0, 'Transport unknown', 'transport=flashsocket');
    });

    it('unknown sid: 400 code 1 "Session ID unknown" (GET and POST)', async () => {
      assertHttpError(await httpRequest(srv, { query: qs({ sid: 'no-such-session' }) }), 1, 'Session ID unknown', 'GET');
      assertHttpError(
        await httpRequest(srv, { method: 'POST', query: qs({ sid: 'no-such-session' }), body: '4hello' }),
        1, 'Session ID unknown', 'POST',
      );
    });

    it('POST handshake: 400 code 2 "Bad handshake method"', async () => {
      assertHttpError(await httpRequest(srv, { method: 'POST', query: qs(), body: '4hello' }), 2, 'Bad handshake method', 'POST ?EIO=4&transport=polling');
    });

    it('EIO=3: 400 code 5 "Unsupported protocol version"', async () => {
      assertHttpError(await httpRequest(srv, { query: qs({ EIO: '3' }) }), 5, 'Unsupported protocol version', 'EIO=3');
    });

    it('missing EIO: 400 code 5 "Unsupported protocol version"', async () => {
      assertHttpError(await httpRequest(srv, { query: 'transport=polling' }), 5, 'Unsupported protocol version', 'no EIO');
    });

    it('transport=websocket without a WebSocket upgrade: 400 code 3 "Bad request"', async () => {
      assertHttpError(await httpRequest(srv, { query: qs({ transport: 'websocket' }) }), 3, 'Bad request', 'plain GET transport=websocket');
      const { sid } = await pollingHandshake(srv);
      assertHttpError(await httpRequest(srv, { query: qs({ transport: 'websocket', sid }) }), 3, 'Bad request', 'plain GET transport=websocket&sid');
    });

    it('long-polling requests on a WebSocket session: 400 code 3 "Bad request"', async () => {
      const ws = await WsClient.open(srv);
      const { sid } = JSON.parse((await ws.nextText()).slice(1));
      assertHttpError(await httpRequest(srv, { query: qs({ sid }) }), 3, 'Bad request', 'GET polling on a WebSocket session');
      assertHttpError(await httpRequest(srv, { method: 'POST', query: qs({ sid }), body: '4x' }), 3, 'Bad request', 'POST polling on a WebSocket session');
      await ws.close();
    });

    it('WebSocket with an unknown sid is refused', async () => {
      await assertWsRefused(srv, { sid: 'no-such-session' });
    });

    it('WebSocket with EIO=3 is refused', async () => {
      await assertWsRefused(srv, { EIO: '3' });
    });

    it('WebSocket with a mandatory query parameter missing is refused', async () => {
      await assertWsRefused(srv, { query: 'transport=websocket' });
    });
  });
}

describe('heartbeat (engine_echo: pingInterval 300, pingTimeout 200)', () => {
  it('WebSocket: a ping every pingInterval, answered pongs keep the session', async () => {
    const c = await WsClient.open(EIO);
    const opened = Date.now();
    await c.nextText();
    await sleep(1400);
    assert.ok(!c.closed, `closed although every ping was answered: ${JSON.stringify(c.closedInfo)}`);
    const t = c.pingTimes;
    assert.ok(t.length >= 3 && t.length <= 6, `expected about 4 pings in 1.4 s, got ${t.length}`);
    assert.ok(t[0] - opened >= PING_INTERVAL - 60, `first ping came ${t[0] - opened} ms after the open, before pingInterval`);
    for (let i = 1; i < t.length; i++) {
      const gap = t[i] - t[i - 1];
      assert.ok(gap >= PING_INTERVAL - 60 && gap <= PING_INTERVAL + 250, `gap between pings ${gap} ms`);
    }
    // and it still echoes
    c.send('4still-here');
    await c.expectText('4still-here');
    await c.close();
  });

  it('WebSocket: no pong closes the connection within pingInterval + pingTimeout', async () => {
    const c = await WsClient.open(EIO, { autoPong: false });
    const opened = Date.now();
    await c.nextText();
    assert.equal(await c.nextText(1000), '2', 'expected a ping');
    const pinged = Date.now();
    const info = await c.waitClosed(PING_TIMEOUT + 700);
    assert.ok(info.at - pinged >= PING_TIMEOUT - 60, `closed ${info.at - pinged} ms after the ping: before pingTimeout`);
    assert.ok(info.at - opened <= PING_INTERVAL + PING_TIMEOUT + 400, `closed ${info.at - opened} ms after the open`);
  });

  it('long-polling: pings arrive by GET, POSTed pongs keep the session', async () => {
    const { sid } = await pollingHandshake(EIO);
    let last = Date.now();
    for (let i = 0; i < 4; i++) {
      const res = await httpRequest(EIO, { query: qs({ sid }), timeout: 2000 });
      const now = Date.now();
      assert.equal(res.status, 200, `GET ${i}: ${res.status} ${show(res.body)}`);
      assert.equal(res.body, '2', `GET ${i}: expected a ping`);
      assert.ok(now - last >= PING_INTERVAL - 60 && now - last <= PING_INTERVAL + 300, `ping ${i} came ${now - last} ms after the previous pong`);
      assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '3' }), 'pong');
      last = Date.now();
    }
    assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4alive' }));
    assert.deepEqual(await collect(EIO, sid, 1), ['4alive']);
  });

  it('long-polling: no pong closes the session (later requests: 400 unknown sid)', async () => {
    const { sid } = await pollingHandshake(EIO);
    const res = await httpRequest(EIO, { query: qs({ sid }), timeout: 2000 });
    assert.equal(res.body, '2', 'expected a ping');
    await sleep(PING_TIMEOUT + 300);
    assertHttpError(await httpRequest(EIO, { query: qs({ sid }) }), 1, 'Session ID unknown', 'GET after the ping timeout');
    assertHttpError(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '3' }), 1, 'Session ID unknown', 'late pong');
  });

  it('long-polling: a GET held over the ping timeout ends (close packet or error)', async () => {
    const { sid } = await pollingHandshake(EIO);
    const ping = await httpRequest(EIO, { query: qs({ sid }), timeout: 2000 });
    assert.equal(ping.body, '2', 'expected a ping');
    const pinged = Date.now();
    const held = await httpRequest(EIO, { query: qs({ sid }), timeout: 2000 });
    assert.ok(Date.now() - pinged <= PING_TIMEOUT + 400, `held GET ended ${Date.now() - pinged} ms after the ping`);
    if (held.status === 200) assert.equal(held.body, '1', `held GET of a timed-out session: expected the close packet, got ${show(held.body)}`);
    else assert.equal(held.status, 400);
    assertHttpError(await httpRequest(EIO, { query: qs({ sid }) }), 1, 'Session ID unknown', 'GET after the close');
  });
});

describe('long-polling (engine_echo)', () => {
  it('a POST of several packets joined by \\x1e gets ok; the GET returns them joined by \\x1e', async () => {
    const { sid } = await pollingHandshake(EIO);
    const res = await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4hello\x1e4world\x1ebAQIDBA==' });
    assertOk(res);
    await sleep(30);
    const get = await httpRequest(EIO, { query: qs({ sid }) });
    assert.equal(get.status, 200);
    assert.equal(get.body, '4hello\x1e4world\x1ebAQIDBA==', 'the three echoed packets in one payload');
  });

  it('binary is b + base64 both ways', async () => {
    const { sid } = await pollingHandshake(EIO);
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x1e, 0x34]);
    assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: `b${bytes.toString('base64')}` }));
    const [p] = await collect(EIO, sid, 1);
    assert.equal(p, `b${bytes.toString('base64')}`);
  });

  it('UTF-8 text is echoed byte for byte', async () => {
    const { sid } = await pollingHandshake(EIO);
    assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4€ é 😀 ü' }));
    assert.deepEqual(await collect(EIO, sid, 1), ['4€ é 😀 ü']);
  });

  it('a held GET is answered as soon as there is something to send', async () => {
    const { sid } = await pollingHandshake(EIO);
    const held = httpRequest(EIO, { query: qs({ sid }) });
    await sleep(50);
    const t = Date.now();
    assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4wake' }));
    const res = await held;
    assert.equal(res.status, 200);
    assert.equal(res.body, '4wake');
    assert.ok(Date.now() - t < 200, 'held GET answered late');
  });

  it('a message up to maxPayload is accepted', async () => {
    const { sid } = await pollingHandshake(EIO);
    const body = `4${'x'.repeat(MAX_PAYLOAD - 1000)}`;
    assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body }));
    const [p] = await collect(EIO, sid, 1);
    assert.equal(p.length, body.length);
    assert.ok(p === body);
  });

  it('a second concurrent GET gets 400 and the session closes', async () => {
    const { sid } = await pollingHandshake(EIO);
    const first = httpRequest(EIO, { query: qs({ sid }), timeout: 3000 }).catch((e) => ({ error: e.message }));
    await sleep(50);
    const second = await httpRequest(EIO, { query: qs({ sid }) });
    assert.equal(second.status, 400, `second GET: ${second.status} ${show(second.body)}`);
    const r = await first;
    assert.ok(r.error === undefined || !/no complete response/.test(r.error), 'the first GET was never answered');
    if (r.status === 200) assert.equal(r.body, '1', `first GET of a closed session: ${show(r.body)}`);
    assertHttpError(await httpRequest(EIO, { query: qs({ sid }) }), 1, 'Session ID unknown', 'GET after the overlap');
  });

  it('a POST while another POST is in flight gets 400', async () => {
    const { sid } = await pollingHandshake(EIO);
    const first = partialPost(EIO, sid, { declared: 100, sent: '4partial' });
    await sleep(80);
    const second = await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4x' });
    assert.equal(second.status, 400, `second POST: ${second.status} ${show(second.body)}`);
    first.abort();
    await first.response;
    // The spec: "the server MUST return an HTTP 400 error status and close the session".
    assertHttpError(await httpRequest(EIO, { query: qs({ sid }) }), 1, 'Session ID unknown', 'GET after the overlapping POST');
  });

  it('a POSTed close packet ends the session', async () => {
    const { sid } = await pollingHandshake(EIO);
    const held = httpRequest(EIO, { query: qs({ sid }) });
    await sleep(30);
    const res = await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '1' });
    assert.ok(res.status === 200 || res.status === 400, `POST 1: ${res.status}`);
    const h = await held; // ends, whatever it carries (the spec says nothing of it)
    assert.ok(h.status === 200 || h.status === 400, `held GET: ${h.status}`);
    assertHttpError(await httpRequest(EIO, { query: qs({ sid }) }), 1, 'Session ID unknown', 'GET after close');
  });

  it('a malformed payload closes the session', async () => {
    const { sid } = await pollingHandshake(EIO);
    const res = await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4ok\x1e\x1e9nope\x1ebnot base64!!' });
    assert.ok(res.status === 400 || res.status === 200, `POST: ${res.status}`);
    await sleep(50);
    assertHttpError(await httpRequest(EIO, { query: qs({ sid }) }), 1, 'Session ID unknown', 'GET after a malformed payload');
    assertProcessUp(EIO);
  });
});

describe('upgrade to WebSocket (engine_echo)', () => {
  it('2probe → 3probe, the pending GET gets noop 6, then 5 moves everything to the WebSocket', async () => {
    const { sid } = await pollingHandshake(EIO);
    const held = httpRequest(EIO, { query: qs({ sid }) });
    await sleep(30);
    const ws = await WsClient.open(EIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    const h = await held;
    assert.equal(h.status, 200, `pending GET: ${h.status} ${show(h.body)}`);
    assert.equal(h.body, '6', 'the pending GET must get a noop packet');
    ws.send('5');
    ws.send('4over websocket');
    await ws.expectText('4over websocket');
    ws.sendBinary(Buffer.from([1, 2, 3, 4]));
    await ws.expectBinary(Buffer.from([1, 2, 3, 4]));

    // long-polling is over for this session
    assertHttpError(await httpRequest(EIO, { query: qs({ sid }) }), 3, 'Bad request', 'GET on an upgraded session');
    assertHttpError(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4x' }), 3, 'Bad request', 'POST on an upgraded session');

    // a second WebSocket for the same session is refused
    await assertWsRefused(EIO, { sid });

    // heartbeat goes on over the WebSocket
    await sleep(PING_INTERVAL + PING_TIMEOUT + 200);
    assert.ok(!ws.closed, `upgraded WebSocket closed: ${JSON.stringify(ws.closedInfo)}`);
    assert.ok(ws.pingTimes.length >= 1, 'no ping over the upgraded WebSocket');
    ws.send('4after pings');
    await ws.expectText('4after pings');
    await ws.close();
  });

  it('a GET made after the probe, before 5, is answered with noop', async () => {
    const { sid } = await pollingHandshake(EIO);
    const ws = await WsClient.open(EIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    const get = await httpRequest(EIO, { query: qs({ sid }), timeout: 1000 });
    assert.equal(get.status, 200);
    assert.equal(get.body, '6');
    ws.send('5');
    ws.send('4done');
    await ws.expectText('4done');
    await ws.close();
  });

  it('messages posted before the upgrade are not lost', async () => {
    const { sid } = await pollingHandshake(EIO);
    assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4a\x1e4b' }));
    await sleep(30);
    const ws = await WsClient.open(EIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    ws.send('5');
    // the echoes of 4a and 4b went nowhere yet: they arrive over the WebSocket (or were already
    // answered to a GET, which we never made)
    await ws.expectText('4a');
    await ws.expectText('4b');
    await ws.close();
  });

  it('a second WebSocket during the upgrade is refused; the first completes', async () => {
    const { sid } = await pollingHandshake(EIO);
    const ws = await WsClient.open(EIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    await assertWsRefused(EIO, { sid });
    ws.send('5');
    ws.send('4first');
    await ws.expectText('4first');
    await ws.close();
  });

  it('a ping due during the upgrade is not lost: it comes over the WebSocket after 5', async () => {
    const { sid } = await pollingHandshake(EIO);
    const opened = Date.now();
    const ws = await WsClient.open(EIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    // the first ping falls due (pingInterval after the handshake) while the upgrade is pending
    await sleep(Math.max(0, PING_INTERVAL + 60 - (Date.now() - opened)));
    ws.send('5');
    await sleep(PING_INTERVAL + PING_TIMEOUT + 100);
    assert.ok(!ws.closed, `closed: ${JSON.stringify(ws.closedInfo)}; received ${ws.log.map((m) => show(m)).join(', ')}`);
    assert.ok(ws.pingTimes.length >= 1, 'no ping arrived over the WebSocket');
    ws.send('4after');
    await ws.expectText('4after');
    await ws.close();
  });

  it('anything but 5 after the probe aborts the upgrade; long-polling goes on', async () => {
    const { sid } = await pollingHandshake(EIO);
    const ws = await WsClient.open(EIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    ws.send('4not an upgrade');
    await ws.waitClosed(1000);
    assertOk(await httpRequest(EIO, { method: 'POST', query: qs({ sid }), body: '4still polling' }));
    assert.deepEqual(await collect(EIO, sid, 1), ['4still polling']);
  });

  it('a WebSocket-only session cannot be "upgraded" again', async () => {
    const first = await WsClient.open(EIO);
    const open = JSON.parse((await first.nextText()).slice(1));
    await assertWsRefused(EIO, { sid: open.sid });
    first.send('4ok');
    await first.expectText('4ok');
    await first.close();
  });
});

describe('echo (engine_echo)', () => {
  it('WebSocket: text as text, binary as binary, in order', async () => {
    const c = await WsClient.open(EIO);
    await c.nextText();
    c.send('4hello');
    await c.expectText('4hello');
    c.send('4');
    await c.expectText('4');
    c.send('4€ é 😀');
    await c.expectText('4€ é 😀');
    const bin = Buffer.from([0x00, 0xff, 0x34, 0x1e, 0x62]);
    c.sendBinary(bin);
    await c.expectBinary(bin);
    c.sendBinary(Buffer.alloc(0));
    await c.expectBinary(Buffer.alloc(0));
    for (let i = 0; i < 50; i++) c.send(`4m${i}`);
    for (let i = 0; i < 50; i++) await c.expectText(`4m${i}`);
    await c.close();
  });

  it('WebSocket: a message up to maxPayload is accepted', async () => {
    const c = await WsClient.open(EIO);
    await c.nextText();
    const text = `4${'y'.repeat(MAX_PAYLOAD - 1000)}`;
    c.send(text);
    const got = await c.nextText(5000);
    assert.equal(got.length, text.length);
    assert.ok(got === text);
    await c.close();
  });

  it('long-polling client and WebSocket client are independent sessions', async () => {
    const p = await PollingClient.connect(EIO);
    const w = await WsClient.open(EIO);
    await w.nextText();
    await p.send('4from polling');
    w.send('4from websocket');
    await w.expectText('4from websocket');
    await p.expectText('4from polling');
    await p.close();
    await w.close();
  });
});
