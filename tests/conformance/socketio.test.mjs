// Socket.IO v5 on protocol_server, from the protocol specification, over raw WebSocket frames
// and raw long-polling requests.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  SIO, CONNECT_TIMEOUT, sleep, qs, show, httpRequest, WsClient, closeAll,
  TRANSPORTS, engineOpen, sioConnect, joinNamespace, sendOk, assertAlive, assertConnectionClosed,
  pollingHandshake, assertOk, assertHttpError,
} from './lib.mjs';

after(closeAll);

const PH0 = '{"_placeholder":true,"num":0}';
const PH1 = '{"_placeholder":true,"num":1}';

for (const transport of TRANSPORTS) {
  describe(`Socket.IO over ${transport}`, () => {
    it('40 → 40{"sid"} with a fresh socket id, then the auth event with {}', async () => {
      const c = await engineOpen(transport);
      await sendOk(c, ['40']);
      const connect = await c.nextText();
      assert.match(connect, /^40\{/, `expected 40{"sid":…}, got ${show(connect)}`);
      const data = JSON.parse(connect.slice(2));
      assert.deepEqual(Object.keys(data), ['sid'], `CONNECT answer: ${show(connect)}`);
      assert.equal(typeof data.sid, 'string');
      assert.notEqual(data.sid, c.sid, 'the socket id must differ from the Engine.IO session id');
      await c.expectText('42["auth",{}]');
      await c.close();
    });

    it('two connections get distinct socket ids', async () => {
      const a = await sioConnect(transport);
      const b = await sioConnect(transport);
      assert.notEqual(a.sioSids['/'], b.sioSids['/']);
      await a.close();
      await b.close();
    });

    it('40{"token":"123"} → the auth event carries the payload', async () => {
      const c = await engineOpen(transport);
      await sendOk(c, ['40{"token":"123"}']);
      assert.match(await c.nextText(), /^40\{"sid":"[^"]+"\}$/);
      await c.expectText('42["auth",{"token":"123"}]');
      await c.close();
    });

    it('message → message-back with the same arguments', async () => {
      const c = await sioConnect(transport);
      await sendOk(c, ['42["message",1,"2",{"3":[true]}]']);
      await c.expectText('42["message-back",1,"2",{"3":[true]}]');
      await sendOk(c, ['42["message"]']);
      await c.expectText('42["message-back"]');
      await sendOk(c, ['42["message",null,-1.5,"\\u00e9\\"\\\\",[[],{}]]']);
      const got = JSON.parse((await c.nextText()).slice(2));
      assert.deepEqual(got, ['message-back', null, -1.5, 'é"\\', [[], {}]]);
      await c.close();
    });

    it('many packets keep their order', async () => {
      const c = await sioConnect(transport);
      const frames = [];
      for (let i = 0; i < 500; i++) frames.push(`42["message",${i}]`);
      await sendOk(c, frames);
      for (let i = 0; i < 500; i++) await c.expectText(`42["message-back",${i}]`);
      await c.close();
    });

    it('answers go to their own connection only (30 clients at once)', async () => {
      const clients = await Promise.all(Array.from({ length: 30 }, () => sioConnect(transport)));
      await Promise.all(clients.map((c, i) => sendOk(c, [`42["message","client-${i}"]`, `421["message-with-ack","client-${i}"]`])));
      await Promise.all(clients.map(async (c, i) => {
        await c.expectText(`42["message-back","client-${i}"]`);
        await c.expectText(`431["client-${i}"]`);
      }));
      await sleep(100);
      for (const c of clients) assert.equal(c.messages.length, 0, `extra messages: ${c.messages.map((m) => show(m)).join(', ')}`);
      await Promise.all(clients.map((c) => c.close()));
    });

    it('421["message-with-ack",1,"2"] → 431[1,"2"]', async () => {
      const c = await sioConnect(transport);
      await sendOk(c, ['421["message-with-ack",1,"2"]']);
      await c.expectText('431[1,"2"]');
      await sendOk(c, ['4212["message-with-ack"]']);
      await c.expectText('4312[]');
      await sendOk(c, ['424294967296["message-with-ack",{"a":"b"}]']);
      await c.expectText('434294967296[{"a":"b"}]');
      await c.close();
    });

    it('binary event: 451-[…placeholder…] + attachment → message-back with the same attachment', async () => {
      const c = await sioConnect(transport);
      const bin = Buffer.from([1, 2, 3, 4]);
      await sendOk(c, [`451-["message",${PH0}]`, bin]);
      await c.expectText(`451-["message-back",${PH0}]`);
      await c.expectBinary(bin);
      await c.close();
    });

    it('binary event with two attachments in order, mixed with other arguments', async () => {
      const c = await sioConnect(transport);
      const a = Buffer.from([0xde, 0xad]);
      const b = Buffer.from([0xbe, 0xef, 0x00]);
      await sendOk(c, [`452-["message","x",${PH0},{"y":${PH1}}]`, a, b]);
      await c.expectText(`452-["message-back","x",${PH0},{"y":${PH1}}]`);
      await c.expectBinary(a);
      await c.expectBinary(b);
      await c.close();
    });

    it('binary with ack: 451-7["message-with-ack",<bin>] → 461-7[<bin>]', async () => {
      const c = await sioConnect(transport);
      const bin = Buffer.from('binary ack');
      await sendOk(c, [`451-7["message-with-ack",${PH0}]`, bin]);
      await c.expectText(`461-7[${PH0}]`);
      await c.expectBinary(bin);
      await c.close();
    });

    it('40/custom, → 40/custom,{"sid"}, then the auth event on /custom', async () => {
      const c = await engineOpen(transport);
      await sendOk(c, ['40/custom,']);
      const connect = await c.nextText();
      assert.match(connect, /^40\/custom,\{"sid":"[^"]+"\}$/, show(connect));
      await c.expectText('42/custom,["auth",{}]');
      await sendOk(c, ['40/custom,{"token":"abc"}']).catch(() => {});
      // a second CONNECT to the same namespace closes the connection (DESIGN §4)
      await assertConnectionClosed(c);
    });

    it('40/custom,{"token":"abc"} → auth payload on /custom', async () => {
      const c = await engineOpen(transport);
      await sendOk(c, ['40/custom,{"token":"abc"}']);
      assert.match(await c.nextText(), /^40\/custom,\{"sid":"[^"]+"\}$/);
      await c.expectText('42/custom,["auth",{"token":"abc"}]');
      await c.close();
    });

    it('/ and /custom share one connection, with different socket ids', async () => {
      const c = await sioConnect(transport);
      const custom = await joinNamespace(c, '/custom');
      assert.notEqual(custom, c.sioSids['/']);
      await assertAlive(c, 'both');
      await c.close();
    });

    it('40/nope, → 44/nope,{"message":"Invalid namespace"}; the connection stays usable', async () => {
      const c = await engineOpen(transport);
      await sendOk(c, ['40/nope,']);
      await c.expectText('44/nope,{"message":"Invalid namespace"}');
      await joinNamespace(c, '/');
      await assertAlive(c, 'after-44');
      await c.close();
    });

    it(`no CONNECT within connectTimeout (${CONNECT_TIMEOUT} ms) closes the connection`, async () => {
      const c = await engineOpen(transport); // pings are answered all along
      const t = Date.now();
      const info = await c.waitClosed(CONNECT_TIMEOUT + 1500);
      const took = info.at - t;
      assert.ok(took >= CONNECT_TIMEOUT - 250, `closed after ${took} ms, before connectTimeout: ${JSON.stringify(info)}`);
      assert.ok(c.pingTimes.length >= 2, `only ${c.pingTimes.length} pings: the heartbeat, not connectTimeout, may have closed it`);
      if (transport === 'polling') {
        assertHttpError(await httpRequest(SIO, { query: qs({ sid: c.sid }) }), 1, 'Session ID unknown', 'GET after connect timeout');
      }
    });

    it('a CONNECT within connectTimeout keeps the connection past it', async () => {
      const c = await engineOpen(transport);
      await sleep(CONNECT_TIMEOUT / 2);
      await joinNamespace(c, '/');
      await sleep(CONNECT_TIMEOUT);
      assert.ok(!c.closed, `closed: ${JSON.stringify(c.closedInfo)}`);
      await assertAlive(c, 'past-connect-timeout');
      await c.close();
    });

    it('41 disconnects the namespace: events to it are no longer answered', async () => {
      const c = await sioConnect(transport);
      await joinNamespace(c, '/custom');
      await sendOk(c, ['41/custom,']);
      await sleep(50);
      // the connection is kept for the other namespace
      await assertAlive(c, 'after-41-custom');
      await sendOk(c, ['41']);
      await sleep(50);
      assert.ok(!c.closed, `DISCONNECT of the last namespace closed the connection: ${JSON.stringify(c.closedInfo)}`);
      await c.sendFrames(['42["message","sent-to-a-left-namespace"]']);
      // no message-back: the socket is gone; and a packet for a namespace not joined closes
      // the connection (DESIGN §4)
      await assertConnectionClosed(c);
      assert.ok(!c.log.some((m) => typeof m.data === 'string' && m.data.includes('sent-to-a-left-namespace')), `answered after 41: ${c.log.map((m) => show(m)).join(', ')}`);
    });

    it('after 41 the namespace can be joined again, with a new socket id', async () => {
      const c = await sioConnect(transport);
      const first = c.sioSids['/'];
      await sendOk(c, ['41']);
      const second = await joinNamespace(c, '/');
      assert.notEqual(second, first);
      await assertAlive(c, 'rejoined');
      await c.close();
    });
  });
}

describe('Socket.IO across an upgrade (protocol_server)', () => {
  it('connect over long-polling, upgrade, then events flow over the WebSocket', async () => {
    const { sid } = await pollingHandshake(SIO);
    assertOk(await httpRequest(SIO, { method: 'POST', query: qs({ sid }), body: '40' }));
    const get = await httpRequest(SIO, { query: qs({ sid }) });
    const packets = get.body.split('\x1e');
    assert.match(packets[0], /^40\{"sid":"[^"]+"\}$/, show(get.body));
    let rest = packets.slice(1);
    if (rest.length === 0) rest = (await httpRequest(SIO, { query: qs({ sid }) })).body.split('\x1e');
    assert.deepEqual(rest, ['42["auth",{}]']);

    const held = httpRequest(SIO, { query: qs({ sid }) });
    await sleep(20);
    const ws = await WsClient.open(SIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    assert.equal((await held).body, '6');
    ws.send('5');
    ws.send('42["message","via websocket"]');
    await ws.expectText('42["message-back","via websocket"]');
    ws.send('421["message-with-ack","ack via websocket"]');
    await ws.expectText('431["ack via websocket"]');
    ws.send('40/custom,');
    assert.match(await ws.nextText(), /^40\/custom,\{"sid":"[^"]+"\}$/);
    await ws.expectText('42/custom,["auth",{}]');
    await sleep(600);
    assert.ok(!ws.closed, 'upgraded connection closed');
    ws.send('42["message","later"]');
    await ws.expectText('42["message-back","later"]');
    await ws.close();
  });

  it('a binary packet split across the upgrade is reassembled', async () => {
    const { sid } = await pollingHandshake(SIO);
    assertOk(await httpRequest(SIO, { method: 'POST', query: qs({ sid }), body: '40' }));
    const first = await httpRequest(SIO, { query: qs({ sid }) });
    if (!first.body.includes('42["auth"')) await httpRequest(SIO, { query: qs({ sid }) });
    // header over long-polling, attachment over the WebSocket after the upgrade
    assertOk(await httpRequest(SIO, { method: 'POST', query: qs({ sid }), body: `451-["message",${PH0}]` }));
    const ws = await WsClient.open(SIO, { sid });
    ws.send('2probe');
    await ws.expectText('3probe');
    ws.send('5');
    ws.sendBinary(Buffer.from([9, 8, 7]));
    await ws.expectText(`451-["message-back",${PH0}]`);
    await ws.expectBinary(Buffer.from([9, 8, 7]));
    await ws.close();
  });
});
