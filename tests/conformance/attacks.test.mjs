// Bad packets close the connection that sent them, and only that one (DESIGN §4: the known
// attacks on the reference parser, plus what the Socket.IO spec says a receiver MUST reject).
// Each attack is sent over WebSocket and over long-polling (one POST). After each, a WebSocket
// and a long-polling client connected before the attack must still get their message-back,
// and the server process must still run.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  SIO, show, TRANSPORTS, sioConnect, joinNamespace, sendOk, assertAlive, assertConnectionClosed,
  assertProcessUp, closeAll, pollingHandshake, engineOpen, rawWebSocket, frameHeader,
} from './lib.mjs';

after(closeAll);

const PH = (num) => `{"_placeholder":true,"num":${JSON.stringify(num)}}`;
const BIN = Buffer.from([1, 2, 3, 4]);
const RESERVED = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'];

/**
 * The attacks: frames sent after the victim joined `/` (strings: text messages, Buffers:
 * binary messages). `setup` namespaces are joined first.
 */
const ATTACKS = [
  // placeholders
  { name: 'placeholder num is a string ("splice")', frames: [`451-["message",${PH('splice')}]`, BIN] },
  { name: 'placeholder num out of range (1 of 1)', frames: [`451-["message",${PH(1)}]`, BIN] },
  { name: 'placeholder num negative', frames: [`451-["message",${PH(-1)}]`, BIN] },
  { name: 'placeholder num not an integer (0.5)', frames: [`451-["message",${PH(0.5)}]`, BIN] },
  { name: 'placeholder num huge', frames: [`451-["message",${PH(1e300)}]`, BIN] },
  { name: 'placeholder num "0" as a string', frames: [`451-["message",${PH('0')}]`, BIN] },
  // event names
  { name: 'event name is an object', frames: ['42[{"toString":"foo"}]'] },
  { name: 'event name is an object (binary event)', frames: [`451-[{"toString":"foo"},${PH(0)}]`, BIN] },
  { name: 'event name is an array', frames: ['42[["message"]]'] },
  ...RESERVED.map((n) => ({ name: `reserved event name "${n}"`, frames: [`42["${n}"]`] })),
  { name: 'reserved event name with ack id', frames: ['421["disconnect","x"]'] },
  // payload shape (Socket.IO spec: "MUST be a non-empty array … the receiver MUST close")
  { name: 'event payload is an empty array', frames: ['42[]'] },
  { name: 'event payload is an object', frames: ['42{"a":1}'] },
  { name: 'event payload is a string', frames: ['42"message"'] },
  { name: 'event payload missing', frames: ['42'] },
  { name: 'event payload is truncated JSON', frames: ['42["message",'] },
  { name: 'event payload has trailing garbage', frames: ['42["message"]]x'] },
  { name: 'ack payload is not an array', frames: ['431{"a":1}'] },
  // attachment counts and floods
  { name: 'attachment count beyond the limit (11)', frames: ['4511-["message"]'] },
  { name: 'attachment count beyond the limit (1000000)', frames: ['451000000-["message"]'] },
  { name: 'attachment count is a huge run of digits', frames: [`45${'9'.repeat(100_000)}-["message"]`] },
  { name: 'attachment count without "-"', frames: ['451["message"]'] },
  { name: 'more placeholders than attachments announced', frames: [`451-["message",${PH(0)},${PH(1)}]`, BIN] },
  {
    name: 'flood of attachment frames after a complete packet',
    frames: [`451-["message",${PH(0)}]`, BIN, ...Array.from({ length: 1000 }, () => BIN)],
  },
  // ack ids
  { name: 'ack id is a huge run of digits', frames: [`42${'1'.repeat(100_000)}["message"]`] },
  // interleaving
  { name: 'text in the middle of a binary packet', frames: [`452-["message",${PH(0)},${PH(1)}]`, BIN, '42["message",1]'] },
  { name: 'binary with no header', frames: [BIN] },
  { name: 'binary with no header after a text packet', frames: ['42["message","x"]', BIN] },
  // packet types
  { name: 'unknown Socket.IO packet type 7', frames: ['47["message"]'] },
  { name: 'unknown Socket.IO packet type 9', frames: ['49'] },
  { name: 'non-digit Socket.IO packet type', frames: ['4x["message"]'] },
  { name: 'empty Socket.IO packet', frames: ['4'] },
  { name: 'CONNECT_ERROR from a client', frames: ['44{"message":"x"}'] },
  { name: 'unknown Engine.IO packet type 7', frames: ['7'] },
  { name: 'unknown Engine.IO packet type x', frames: ['xhello'] },
  // namespaces
  { name: 'event for a namespace not joined', frames: ['42/custom,["message",1]'] },
  { name: 'ack for a namespace not joined', frames: ['43/custom,1[]'] },
  { name: 'event for a namespace that does not exist', frames: ['42/nope,["message",1]'] },
  { name: 'second CONNECT to the same namespace', frames: ['40'] },
  { name: 'second CONNECT to /custom', setup: ['/custom'], frames: ['40/custom,'] },
  { name: 'DISCONNECT of a namespace not joined', frames: ['41/custom,'] },
];

let bystanders;
let round = 0;

before(async () => {
  bystanders = [await sioConnect('websocket'), await sioConnect('polling')];
  await joinNamespace(bystanders[0], '/custom');
});

async function checkBystanders() {
  round++;
  assertProcessUp(SIO);
  for (const b of bystanders) {
    assert.ok(!b.closed, `a bystander connection was closed: ${JSON.stringify(b.closedInfo)}`);
    await assertAlive(b, `round-${round}`);
  }
}

for (const transport of TRANSPORTS) {
  describe(`attacks over ${transport}: the sender's connection closes, others go on`, () => {
    for (const attack of ATTACKS) {
      it(attack.name, async () => {
        const victim = await sioConnect(transport);
        for (const nsp of attack.setup ?? []) await joinNamespace(victim, nsp);
        await assertAlive(victim, 'before');
        const res = await victim.sendFrames(attack.frames);
        if (res !== undefined) {
          assert.ok(res.status === 200 || res.status === 400, `POST of the attack: unexpected ${res.status} ${show(res.body)}`);
        }
        await assertConnectionClosed(victim, 2000);
        await checkBystanders();
      });
    }

    it('control: the same kind of client, sending valid packets, stays connected', async () => {
      const c = await sioConnect(transport);
      await sendOk(c, [`451-["message",${PH(0)}]`, BIN]);
      await c.expectText(`451-["message-back",${PH(0)}]`);
      await c.expectBinary(BIN);
      await new Promise((r) => setTimeout(r, 800));
      assert.ok(!c.closed, `closed: ${JSON.stringify(c.closedInfo)}`);
      await assertAlive(c, 'control');
      await c.close();
      await checkBystanders();
    });
  });
}

describe('packets before any CONNECT (spec: the server MUST close the connection)', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport}: an event before CONNECT closes the connection`, async () => {
      const c = await engineOpen(transport);
      await c.sendFrames(['42["message",1]']);
      await assertConnectionClosed(c);
      await checkBystanders();
    });

    it(`${transport}: binary before CONNECT closes the connection`, async () => {
      const c = await engineOpen(transport);
      await c.sendFrames([BIN]);
      await assertConnectionClosed(c);
      await checkBystanders();
    });
  }

  for (const [name, packet] of [
    ['CONNECT payload is an array', '40[1]'],
    ['CONNECT payload is a string', '40"token"'],
    ['CONNECT payload is invalid JSON', '40{"token":'],
    ['CONNECT to a namespace with a payload that is not an object', '40/custom,"token"'],
  ]) {
    for (const transport of TRANSPORTS) {
      it(`${transport}: ${name} closes the connection`, async () => {
        const c = await engineOpen(transport);
        await c.sendFrames([packet]);
        await assertConnectionClosed(c);
        assert.ok(!c.log.some((m) => typeof m.data === 'string' && m.data.startsWith('40')), `CONNECT answered: ${c.log.map((m) => show(m)).join(', ')}`);
        await checkBystanders();
      });
    }
  }

  it('a flood of handshakes leaves the server up', async () => {
    const all = [];
    for (let i = 0; i < 200; i++) all.push(pollingHandshake(SIO));
    const done = await Promise.allSettled(all);
    const failed = done.filter((d) => d.status === 'rejected');
    assert.equal(failed.length, 0, failed.map((f) => f.reason?.message).slice(0, 3).join('; '));
    await checkBystanders();
  });
});

describe('WebSocket framing violations (RFC 6455: the server must fail the connection)', () => {
  const cases = [
    // masked text frame whose payload is not UTF-8: "4" then 0xff 0xfe
    ['a text frame that is not UTF-8', () => Buffer.concat([frameHeader(0x1, 3, Buffer.from([1, 2, 3, 4])), mask(Buffer.from([0x34, 0xff, 0xfe]), [1, 2, 3, 4])])],
    // an unmasked frame from a client
    ['an unmasked client frame', () => Buffer.from([0x81, 0x06, ...Buffer.from('4hello')])],
    // a reserved opcode
    ['a frame with a reserved opcode', () => Buffer.concat([frameHeader(0x3, 1), Buffer.from('4')])],
    // a control frame longer than 125 bytes
    ['a ping control frame of 200 bytes', () => Buffer.concat([frameHeader(0x9, 200), Buffer.alloc(200)])],
  ];
  for (const [name, frame] of cases) {
    it(name, async () => {
      const { socket } = await rawWebSocket(SIO);
      socket.resume();
      const closed = new Promise((r) => socket.once('close', r));
      socket.write(frame());
      const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 2000))]);
      socket.destroy();
      assert.equal(outcome, 'closed', `the server kept the connection open after ${name}`);
      await checkBystanders();
    });
  }
});

function mask(payload, key) {
  return Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
}
