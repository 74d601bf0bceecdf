// Helpers for the raw wire-protocol conformance tests: plain HTTP requests for long-polling,
// raw WebSocket frames through `ws`, and small Engine.IO / Socket.IO packet helpers.
//
// The servers are found through the environment set by run.sh:
//   SIO_PORT / SIO_PID  protocol_server (path /socket.io/)
//   EIO_PORT / EIO_PID  engine_echo     (path /engine.io/)

import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

export const SIO = {
  name: 'protocol_server',
  port: Number(process.env.SIO_PORT ?? 3000),
  pid: process.env.SIO_PID ? Number(process.env.SIO_PID) : undefined,
  path: '/socket.io/',
};
export const EIO = {
  name: 'engine_echo',
  port: Number(process.env.EIO_PORT ?? 3001),
  pid: process.env.EIO_PID ? Number(process.env.EIO_PID) : undefined,
  path: '/engine.io/',
};

export const PING_INTERVAL = 300;
export const PING_TIMEOUT = 200;
export const CONNECT_TIMEOUT = 1000;
export const MAX_PAYLOAD = 1_000_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Query string of an Engine.IO request. `undefined` values are left out. */
export function qs({ EIO = '4', transport = 'polling', sid, ...extra } = {}) {
  const parts = [];
  for (const [k, v] of Object.entries({ EIO, transport, sid, ...extra })) {
    if (v !== undefined && v !== null) parts.push(`${k}=${encodeURIComponent(v)}`);
  }
  return parts.join('&');
}

/** Shows a string or buffer briefly in an assertion message. */
export function show(x, max = 200) {
  if (x === undefined) return 'undefined';
  if (Buffer.isBuffer(x)) return `<binary ${x.length} bytes: ${x.subarray(0, 32).toString('hex')}${x.length > 32 ? '…' : ''}>`;
  if (typeof x === 'object' && x !== null && 'binary' in x) return x.binary ? show(x.data, max) : show(x.data, max);
  const s = JSON.stringify(String(x));
  return s.length > max ? `${s.slice(0, max)}…(${String(x).length} chars)` : s;
}

// ---- HTTP ------------------------------------------------------------------------------------

/**
 * One HTTP request on a fresh TCP connection. Resolves `{status, headers, body, raw}` whatever
 * the status; rejects on a network error or when no complete answer comes within `timeout`.
 */
export function httpRequest(srv, { method = 'GET', query = qs(), body, headers = {}, timeout = 5000, path } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== undefined) {
      h['Content-Length'] ??= Buffer.byteLength(body);
      h['Content-Type'] ??= 'text/plain;charset=UTF-8';
    }
    const req = http.request(
      { host: '127.0.0.1', port: srv.port, path: path ?? `${srv.path}?${query}`, method, headers: h, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const raw = Buffer.concat(chunks);
          resolve({ status: res.statusCode, headers: res.headers, raw, body: raw.toString('utf8') });
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${srv.path}?${query}: no complete response within ${timeout} ms`));
    }, timeout);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${method} ${srv.path}?${query}: ${e.message}`));
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Asserts an Engine.IO HTTP error: status 400 and the JSON body `{"code":…,"message":…}`. */
export function assertHttpError(res, code, message, what = '') {
  const ctx = `${what}: got ${res.status} ${show(res.body)}`;
  assert.equal(res.status, 400, `expected HTTP 400 ${ctx}`);
  let json;
  try {
    json = JSON.parse(res.body);
  } catch {
    assert.fail(`expected a JSON body {"code":${code},"message":"${message}"} ${ctx}`);
  }
  assert.deepEqual(json, { code, message }, ctx);
}

/** A POST whose body is only partly sent: the request stays in flight until `abort()`. */
export function partialPost(srv, sid, { declared = 100, sent = '4x' } = {}) {
  const req = http.request({
    host: '127.0.0.1',
    port: srv.port,
    path: `${srv.path}?${qs({ sid })}`,
    method: 'POST',
    headers: { 'Content-Length': declared, 'Content-Type': 'text/plain;charset=UTF-8' },
    agent: false,
  });
  const response = new Promise((resolve) => {
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
  });
  req.write(sent);
  req.flushHeaders();
  return { response, abort: () => req.destroy() };
}

/** The Engine.IO handshake over long-polling: `{sid, open, res}`. */
export async function pollingHandshake(srv) {
  const res = await httpRequest(srv, { query: qs() });
  assert.equal(res.status, 200, `handshake: got ${res.status} ${show(res.body)}`);
  assert.equal(res.body[0], '0', `handshake body must be an open packet, got ${show(res.body)}`);
  const open = JSON.parse(res.body.slice(1));
  return { sid: open.sid, open, res };
}

/** Splits a long-polling payload into its packets. */
export const splitPayload = (body) => body.split('\x1e');

/** Encodes frames (strings: text packets, Buffers: binary) into a long-polling payload. */
export function encodePayload(frames) {
  return frames.map((f) => (Buffer.isBuffer(f) ? `b${f.toString('base64')}` : f)).join('\x1e');
}

// ---- Clients ---------------------------------------------------------------------------------

const live = new Set();

/** Closes every client still open; call from `after()` in each test file. */
export async function closeAll() {
  await Promise.all([...live].map((c) => c.close().catch(() => {})));
}

/**
 * What both clients share: a queue of received messages `{binary, data}` (data a string for
 * text, a Buffer for binary), waiters, close tracking and automatic answers to pings.
 */
class Inbox {
  constructor(autoPong) {
    this.autoPong = autoPong;
    this.messages = [];
    this.waiters = [];
    this.closeWaiters = [];
    this.closedInfo = null;
    this.pingTimes = [];
    this.log = []; // everything received, for failure messages
    live.add(this);
  }

  _receive(msg) {
    this.log.push(msg);
    if (!msg.binary && msg.data === '2') {
      this.pingTimes.push(Date.now());
      if (this.autoPong) {
        this._pong();
        return;
      }
    }
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(msg);
    } else this.messages.push(msg);
  }

  _closed(info) {
    if (this.closedInfo) return;
    this.closedInfo = { ...info, at: Date.now() };
    live.delete(this);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`connection closed (${JSON.stringify(info)}) while waiting for a message; received so far: ${this.log.map((m) => show(m)).join(', ')}`));
    }
    for (const w of this.closeWaiters.splice(0)) w(this.closedInfo);
  }

  get closed() {
    return this.closedInfo !== null;
  }

  /** The next message, `{binary, data}`. */
  next(timeout = 2000) {
    if (this.messages.length) return Promise.resolve(this.messages.shift());
    if (this.closedInfo) {
      return Promise.reject(new Error(`connection closed (${JSON.stringify(this.closedInfo)}); received: ${this.log.map((m) => show(m)).join(', ')}`));
    }
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no message within ${timeout} ms; received so far: ${this.log.map((m) => show(m)).join(', ') || 'nothing'}`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  /** The next message, which must be text; returns it. */
  async nextText(timeout) {
    const m = await this.next(timeout);
    assert.ok(!m.binary, `expected a text message, got ${show(m.data)}`);
    return m.data;
  }

  /** The next message, which must be binary; returns the Buffer. */
  async nextBinary(timeout) {
    const m = await this.next(timeout);
    assert.ok(m.binary, `expected a binary message, got text ${show(m.data)}`);
    return m.data;
  }

  /** Asserts the next message is exactly this text. */
  async expectText(text, timeout) {
    const got = await this.nextText(timeout);
    assert.equal(got, text, `expected ${show(text)}, got ${show(got)}`);
  }

  /** Asserts the next message is exactly these bytes, as binary. */
  async expectBinary(bytes, timeout) {
    const got = await this.nextBinary(timeout);
    assert.ok(got.equals(bytes), `expected ${show(bytes)}, got ${show(got)}`);
  }

  /** Asserts nothing arrives for `ms` (pings answered automatically don't count). */
  async expectSilence(ms) {
    await sleep(ms);
    assert.equal(this.messages.length, 0, `expected no message, got ${this.messages.map((m) => show(m)).join(', ')}`);
  }

  /** Resolves with the close info when the connection is closed; rejects after `timeout`. */
  waitClosed(timeout = 2000) {
    if (this.closedInfo) return Promise.resolve(this.closedInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`connection still open after ${timeout} ms; received: ${this.log.map((m) => show(m)).join(', ') || 'nothing'}`));
      }, timeout);
      this.closeWaiters.push((info) => {
        clearTimeout(timer);
        resolve(info);
      });
    });
  }
}

/** A raw Engine.IO WebSocket client. */
export class WsClient extends Inbox {
  /**
   * Opens a WebSocket to the Engine.IO path. Resolves with the client once open; rejects with
   * an Error carrying `.status` when the server answers the handshake with another status.
   */
  static open(srv, { sid, EIO: eio = '4', autoPong = true, query, timeout = 3000 } = {}) {
    const url = `ws://127.0.0.1:${srv.port}${srv.path}?${query ?? qs({ EIO: eio, transport: 'websocket', sid })}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeout, maxPayload: 64 * 1024 * 1024 });
      const client = new WsClient(ws, autoPong);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (req, res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const e = new Error(`WebSocket handshake refused: HTTP ${res.statusCode} ${Buffer.concat(chunks).toString()}`);
          e.status = res.statusCode;
          e.body = Buffer.concat(chunks).toString();
          client._closed({ refused: res.statusCode });
          reject(e);
        });
        res.on('error', () => {});
        req.on('error', () => {});
        res.on('close', () => res.socket?.destroy());
        setTimeout(() => {
          req.socket?.destroy();
          req.destroy();
        }, 100);
      });
      ws.once('error', (e) => {
        if (ws.readyState === WebSocket.CONNECTING || !client.opened) reject(e);
      });
      ws.once('open', () => (client.opened = true));
    });
  }

  constructor(ws, autoPong) {
    super(autoPong);
    this.ws = ws;
    this.opened = false;
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      this._receive(isBinary ? { binary: true, data: buf } : { binary: false, data: buf.toString('utf8') });
    });
    ws.on('close', (code, reason) => this._closed({ code, reason: reason.toString() }));
    ws.on('error', (e) => (this.lastError = e.message));
  }

  _pong() {
    this.send('3');
  }

  send(text) {
    this.ws.send(text, () => {});
  }

  sendBinary(buf) {
    this.ws.send(buf, { binary: true }, () => {});
  }

  /** Sends frames (strings as text, Buffers as binary), each its own WebSocket message. */
  async sendFrames(frames) {
    for (const f of frames) {
      if (Buffer.isBuffer(f)) this.sendBinary(f);
      else this.send(f);
    }
  }

  async close() {
    live.delete(this);
    this.ws.terminate();
  }
}

/**
 * A raw Engine.IO long-polling client. After `start()` a loop keeps one GET pending and
 * queues every packet it receives (`b…` decoded to binary); POSTs are serialized, one at a time.
 */
export class PollingClient extends Inbox {
  static async connect(srv, { autoPong = true, start = true } = {}) {
    const { sid, open } = await pollingHandshake(srv);
    const c = new PollingClient(srv, sid, open, autoPong);
    if (start) c.start();
    return c;
  }

  constructor(srv, sid, open, autoPong) {
    super(autoPong);
    this.srv = srv;
    this.sid = sid;
    this.open = open;
    this.chain = Promise.resolve();
    this.stopped = false;
  }

  start() {
    if (this.loop) return;
    this.loop = (async () => {
      while (!this.stopped && !this.closedInfo) {
        let res;
        try {
          res = await httpRequest(this.srv, { query: qs({ sid: this.sid }), timeout: 15000 });
        } catch (e) {
          this._closed({ error: e.message });
          break;
        }
        if (res.status !== 200) {
          this._closed({ status: res.status, body: res.body });
          break;
        }
        let closePacket = false;
        for (const p of splitPayload(res.body)) {
          if (p.startsWith('b')) this._receive({ binary: true, data: Buffer.from(p.slice(1), 'base64') });
          else {
            this._receive({ binary: false, data: p });
            if (p === '1') closePacket = true;
          }
        }
        if (closePacket) this._closed({ closePacket: true });
      }
    })();
  }

  _pong() {
    this.post('3').catch(() => {});
  }

  /** POSTs a raw body (after any POST in flight ends). Resolves with the response. */
  post(body, opts = {}) {
    const p = this.chain.then(() => httpRequest(this.srv, { method: 'POST', query: qs({ sid: this.sid }), body, ...opts }));
    this.chain = p.catch(() => {});
    return p;
  }

  /** Sends one text packet; resolves with the POST's response. */
  send(text) {
    return this.post(text);
  }

  /** Sends frames (strings as text, Buffers as `b` + base64) in one POST. */
  sendFrames(frames) {
    return this.post(encodePayload(frames));
  }

  async close() {
    this.stopped = true;
    live.delete(this);
    if (!this.closedInfo) await this.post('1', { timeout: 1000 }).catch(() => {});
  }
}

/** Asserts a POST was accepted: 200 `ok`. */
export function assertOk(res, what = 'POST') {
  assert.equal(res.status, 200, `${what}: expected 200 ok, got ${res.status} ${show(res.body)}`);
  assert.equal(res.body, 'ok', `${what}: expected body ok, got ${show(res.body)}`);
}

/**
 * Asserts the server refuses a WebSocket (spec: "the server MUST close the WebSocket
 * connection"): either the handshake is answered with a 4xx status, or the WebSocket opens and
 * is closed at once, without answering a probe.
 */
export async function assertWsRefused(srv, opts) {
  let c;
  try {
    c = await WsClient.open(srv, opts);
  } catch (e) {
    assert.ok(e.status >= 400 && e.status < 500, `expected the WebSocket to be refused, got ${e.message}`);
    return;
  }
  c.send('2probe');
  await c.waitClosed(1000);
  assert.ok(!c.log.some((m) => m.data === '3probe'), `a refused WebSocket answered the probe: ${c.log.map((m) => show(m)).join(', ')}`);
}

// ---- Socket.IO -------------------------------------------------------------------------------

export const TRANSPORTS = ['websocket', 'polling'];

/** Opens an Engine.IO session to protocol_server over `transport`, without any CONNECT. */
export async function engineOpen(transport, srv = SIO, opts = {}) {
  if (transport === 'websocket') {
    const c = await WsClient.open(srv, opts);
    const first = await c.nextText();
    assert.equal(first[0], '0', `first WebSocket frame must be the open packet, got ${show(first)}`);
    c.open = JSON.parse(first.slice(1));
    c.sid = c.open.sid;
    return c;
  }
  return PollingClient.connect(srv, opts);
}

/** Sends frames and, over long-polling, checks the POST was accepted. */
export async function sendOk(c, frames) {
  const res = await c.sendFrames(frames);
  if (res !== undefined) assertOk(res);
}

/**
 * A Socket.IO client connected to namespace `nsp` of protocol_server over `transport`:
 * CONNECT sent, `40…{"sid"}` and the `auth` event received and checked.
 */
export async function sioConnect(transport, { nsp = '/', auth } = {}) {
  const c = await engineOpen(transport);
  c.sioSids = {};
  await joinNamespace(c, nsp, auth);
  return c;
}

/** The namespace prefix of a packet: `''` for `/`, `/x,` otherwise. */
export const nspPrefix = (nsp) => (nsp === '/' ? '' : `${nsp},`);

/** Sends CONNECT to `nsp` on an open session and checks the answers; returns the socket id. */
export async function joinNamespace(c, nsp = '/', auth) {
  c.sioSids ??= {};
  const prefix = nspPrefix(nsp);
  await sendOk(c, [`40${prefix}${auth === undefined ? '' : JSON.stringify(auth)}`]);
  const connect = await c.nextText();
  assert.ok(connect.startsWith(`40${prefix}{`), `expected ${show(`40${prefix}{"sid":…}`)}, got ${show(connect)}`);
  const data = JSON.parse(connect.slice(2 + prefix.length));
  assert.equal(typeof data.sid, 'string', `CONNECT answer must carry a string sid: ${show(connect)}`);
  assert.ok(data.sid.length > 0, 'socket sid must not be empty');
  await c.expectText(`42${prefix}${JSON.stringify(['auth', auth ?? {}])}`);
  c.sioSids[nsp] = data.sid;
  return data.sid;
}

/** Asserts that `c` still works: `message` is answered with `message-back`. */
export async function assertAlive(c, tag) {
  await sendOk(c, [`42${JSON.stringify(['message', 'alive', tag])}`]);
  await c.expectText(`42${JSON.stringify(['message-back', 'alive', tag])}`, 3000);
}

/** Asserts the server process is still running (when run.sh gave its pid). */
export function assertProcessUp(srv) {
  if (srv.pid === undefined) return;
  try {
    process.kill(srv.pid, 0);
  } catch {
    assert.fail(`${srv.name} (pid ${srv.pid}) is no longer running`);
  }
}

/** Resident memory of a server process, in bytes (VmRSS), or undefined without its pid. */
export function rss(srv) {
  if (srv.pid === undefined) return undefined;
  const status = fs.readFileSync(`/proc/${srv.pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * Asserts a connection was closed by the server: the WebSocket closed, or for long-polling the
 * pending GET ended (close packet `1`, or an error status) and a new GET is refused with 400.
 */
export async function assertConnectionClosed(c, timeout = 2000) {
  await c.waitClosed(timeout);
  if (c instanceof PollingClient) {
    const res = await httpRequest(c.srv, { query: qs({ sid: c.sid }) });
    assert.equal(res.status, 400, `a GET after the session closed must get 400, got ${res.status} ${show(res.body)}`);
  }
}

// ---- Raw sockets, for what `ws` and `http` would not send ------------------------------------

/**
 * Opens a raw TCP WebSocket handshake by hand. Resolves `{socket, head}` once the 101 arrived
 * (`head`: bytes after the HTTP header). Used to send one frame that declares a huge length.
 */
export function rawWebSocket(srv, query = qs({ transport: 'websocket' })) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(srv.port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw WebSocket handshake timed out'));
    }, 3000);
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('connect', () => {
      socket.write(
        `GET ${srv.path}?${query} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      const head = buf.subarray(0, end).toString();
      if (!/^HTTP\/1\.1 101/.test(head)) {
        socket.destroy();
        reject(new Error(`raw WebSocket handshake refused: ${head.split('\r\n')[0]}`));
        return;
      }
      socket.removeAllListeners('error');
      resolve({ socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}

/** A masked WebSocket frame header (FIN set) for `opcode` declaring `length` payload bytes. */
export function frameHeader(opcode, length, mask = Buffer.alloc(4)) {
  let h;
  if (length < 126) {
    h = Buffer.from([0x80 | opcode, 0x80 | length]);
  } else if (length < 65536) {
    h = Buffer.alloc(4);
    h[0] = 0x80 | opcode;
    h[1] = 0x80 | 126;
    h.writeUInt16BE(length, 2);
  } else {
    h = Buffer.alloc(10);
    h[0] = 0x80 | opcode;
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([h, mask]);
}

/**
 * Writes `chunk` repeatedly (respecting back-pressure) until the peer closes the socket or
 * `cap` bytes were written. Resolves `{written, closed}`.
 */
export function streamUntilClosed(socket, chunk, cap) {
  return new Promise((resolve) => {
    let written = 0;
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      resolve({ written, closed });
    };
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('end', () => finish(true));
    socket.resume(); // drain whatever the server sends
    const pump = () => {
      while (!done && written < cap) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (!done && written >= cap) {
        // Give the server a moment to close before declaring it kept reading.
        setTimeout(() => finish(socket.destroyed), 500);
      }
    };
    pump();
  });
}

/**
 * Streams a POST body over a raw TCP connection (chunked when `contentLength` is undefined)
 * until the server answers or `cap` body bytes were sent. A server may answer early and close
 * without reading the rest, so write errors are ignored as long as a response arrived.
 * Resolves `{status, body, written}` or `{error, written}`.
 */
export function streamPost(srv, sid, { contentLength, cap, chunk = Buffer.alloc(64 * 1024, 0x61) }) {
  return new Promise((resolve) => {
    const chunked = contentLength === undefined;
    const socket = net.connect(srv.port, '127.0.0.1');
    let written = 0;
    let done = false;
    let received = Buffer.alloc(0);
    let writeError;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...r, written });
      socket.destroy();
    };
    const timer = setTimeout(() => finish({ error: 'no response within 10 s' }), 10000);
    const parse = () => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = received.subarray(0, end).toString();
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
      if (status === 100) {
        received = received.subarray(end + 4);
        parse();
        return;
      }
      const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? NaN);
      const body = received.subarray(end + 4);
      if (Number.isFinite(length) && body.length < length) return; // wait for the rest
      finish({ status, body: body.toString() });
    };
    socket.on('data', (d) => {
      received = Buffer.concat([received, d]);
      parse();
    });
    socket.on('error', (e) => (writeError ??= e.message));
    socket.on('close', () => {
      parse();
      const end = received.indexOf('\r\n\r\n');
      if (end >= 0) {
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(received.toString())?.[1]);
        finish({ status, body: received.subarray(end + 4).toString() });
      }
      finish({ error: `closed without a response${writeError ? ` (${writeError})` : ''}` });
    });
    socket.on('connect', () => {
      socket.write(
        `POST ${srv.path}?${qs({ sid })} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n` +
          'Content-Type: text/plain;charset=UTF-8\r\n' +
          (chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${contentLength}\r\n`) +
          'Connection: close\r\n\r\n',
      );
      pump();
    });
    // A server that answers early and closes makes our next write fail (EPIPE), and Node then
    // destroys the socket with the answer still unread in the kernel. So: the headers alone
    // first, giving the server time to refuse a declared length; then one chunk at a time,
    // pausing after each so that an answer is read before the next write.
    const write = (buf) => new Promise((r) => socket.write(buf, () => r()));
    const pump = async () => {
      if (!chunked) await sleep(100);
      while (!done && !socket.destroyed && !writeError && written < cap) {
        const piece = chunk.subarray(0, Math.min(chunk.length, cap - written));
        written += piece.length;
        await write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
        await sleep(5);
      }
      if (!done && !socket.destroyed && !writeError && chunked) socket.write('0\r\n\r\n');
    };
  });
}
