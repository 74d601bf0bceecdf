// Harness of the cluster tests: a private redis-server, cluster nodes of either kind (`node` =
// tests/cluster/node_server.mjs, `roomcast` = the `cluster` example binary), official
// socket.io-client peers on both namespaces of every node, and exact-recipient checks.
//
// Every process started here gets its own process group, is stopped by PID (SIGTERM, then
// SIGKILL of its group) and is registered in $CLUSTER_PID_DIR (run.sh kills whatever is left
// there when it exits), and is SIGKILLed when this test process exits, however it exits.
// Every wait has a deadline.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { Manager } from "socket.io-client";
import { createRequire } from "node:module";
const notepack = createRequire(import.meta.url)("notepack.io");

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../..");
export const ROOMCAST_BIN = process.env.ROOMCAST_CLUSTER_BIN
  ? path.resolve(ROOT, process.env.ROOMCAST_CLUSTER_BIN)
  : path.join(process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target"), "release/examples/cluster");
export const LOG_DIR = process.env.CLUSTER_LOG_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "cluster-logs-"));
const PID_DIR = process.env.CLUSTER_PID_DIR ?? null;
fs.mkdirSync(LOG_DIR, { recursive: true });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const byString = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
let counter = 0;
export const unique = (base = "t") => `${base}-${process.pid}-${++counter}`;

// ------------------------------------------------------------------------------------------
// Matrix selection

const ALL_PAIRS = [
  ["node", "node"],
  ["roomcast", "roomcast"],
  ["roomcast", "node"],
  ["node", "roomcast"],
];

export const roomcastExists = () => {
  try {
    fs.accessSync(ROOMCAST_BIN, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * The pairs of node kinds to run: $CLUSTER_KINDS (space-separated `a,b` pairs, e.g.
 * "node,node roomcast,node"), default every pair whose binaries exist.
 */
export function selectedPairs() {
  const env = process.env.CLUSTER_KINDS?.trim();
  if (env) {
    return env.split(/\s+/).map((p) => {
      const pair = p.split(",");
      if (pair.length === 1) pair.push(pair[0]);
      for (const k of pair) if (k !== "node" && k !== "roomcast") throw new Error(`CLUSTER_KINDS: unknown kind ${k} in ${p}`);
      return pair;
    });
  }
  const have = roomcastExists();
  return ALL_PAIRS.filter((pair) => have || pair.every((k) => k === "node"));
}

export const ADAPTERS = ["classic", "sharded", "streams"];

/** $CLUSTER_ADAPTERS (default "classic sharded streams"). */
export function selectedAdapters() {
  const list = (process.env.CLUSTER_ADAPTERS ?? ADAPTERS.join(" ")).trim().split(/\s+/).filter(Boolean);
  for (const a of list) if (!ADAPTERS.includes(a)) throw new Error(`CLUSTER_ADAPTERS: unknown adapter ${a}`);
  return list;
}

// ------------------------------------------------------------------------------------------
// Processes

const live = new Set();
process.on("exit", () => {
  for (const p of live) p.killGroupSync("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    for (const p of live) p.killGroupSync("SIGKILL");
    process.exit(130);
  });
}

export class Proc {
  constructor(label, cmd, args, env) {
    this.label = label;
    this.cmd = cmd;
    this.args = args;
    this.env = env;
    this.logPath = path.join(LOG_DIR, `${label.replace(/[^A-Za-z0-9_.-]/g, "_")}.log`);
    this.child = null;
  }

  start() {
    const fd = fs.openSync(this.logPath, "a");
    fs.writeSync(fd, `--- ${new Date().toISOString()} start ${this.cmd} ${this.args.join(" ")}\n`);
    this.child = spawn(this.cmd, this.args, {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", fd, fd],
      detached: true, // its own process group
    });
    fs.closeSync(fd);
    this.pid = this.child.pid;
    this.exit = null;
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        if (PID_DIR) fs.rmSync(path.join(PID_DIR, String(this.pid)), { force: true });
        resolve(this.exit);
      });
      this.child.once("error", (err) => {
        this.exit = { code: null, signal: null, error: err.message };
        live.delete(this);
        resolve(this.exit);
      });
    });
    live.add(this);
    if (PID_DIR && this.pid) fs.writeFileSync(path.join(PID_DIR, String(this.pid)), this.label);
    return this;
  }

  get alive() {
    return this.child !== null && this.exit === null;
  }

  signal(sig) {
    if (this.alive) process.kill(this.pid, sig);
  }

  killGroupSync(sig) {
    if (!this.pid) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      /* gone */
    }
  }

  /** SIGTERM, then after `ms` SIGKILL of the whole process group. */
  async stop(ms = 4000) {
    if (!this.child) return;
    if (this.alive) {
      this.killGroupSync("SIGCONT");
      this.signal("SIGTERM");
      const t = setTimeout(() => this.killGroupSync("SIGKILL"), ms);
      await this.exited;
      clearTimeout(t);
    }
    this.killGroupSync("SIGKILL"); // leftovers of its group
  }

  async kill() {
    this.killGroupSync("SIGKILL");
    if (this.child) await this.exited;
  }

  output() {
    try {
      return fs.readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last === true) return;
    } catch (e) {
      if (e?.fatal) throw e;
      last = e?.message ?? e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(50);
  }
}

// ------------------------------------------------------------------------------------------
// A minimal RESP client: one short connection per command, so it is unaffected by outages and
// holds no subscription (it is never counted by NUMSUB).

function encodeCommand(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

function parseReply(buf, pos = 0) {
  const nl = buf.indexOf("\r\n", pos);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString("utf8", pos + 1, nl);
  const next = nl + 2;
  switch (type) {
    case "+":
      return { value: line, end: next };
    case "-":
      return { value: new Error(line), end: next };
    case ":":
      return { value: Number(line), end: next };
    case "$": {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.subarray(next, next + n), end: next + n + 2 };
    }
    case "*": {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p);
        if (!r) return null;
        out.push(r.value);
        p = r.end;
      }
      return { value: out, end: p };
    }
    default:
      throw new Error(`bad RESP type ${JSON.stringify(type)}`);
  }
}

/** Runs one command on the Redis at `port`; rejects on a Redis error or after `ms`. */
export function redisCommand(port, args, ms = 3000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis ${args[0]} timed out`));
    }, ms);
    s.once("connect", () => s.write(encodeCommand(args)));
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      let r;
      try {
        r = parseReply(buf);
      } catch (e) {
        clearTimeout(timer);
        s.destroy();
        return reject(e);
      }
      if (!r) return;
      clearTimeout(timer);
      s.destroy();
      if (r.value instanceof Error) reject(r.value);
      else resolve(r.value);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Sends `commands` pipelined on one connection; resolves with the replies (errors as Error). */
export function redisPipeline(port, commands, ms = 20000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let buf = Buffer.alloc(0);
    let pos = 0;
    const replies = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis pipeline timed out after ${replies.length}/${commands.length} replies`));
    }, ms);
    s.once("connect", () => s.write(Buffer.concat(commands.map(encodeCommand))));
    s.on("data", (d) => {
      buf = Buffer.concat([buf.subarray(pos), d]);
      pos = 0;
      for (;;) {
        const r = parseReply(buf, pos);
        if (!r) break;
        replies.push(r.value);
        pos = r.end;
      }
      if (replies.length >= commands.length) {
        clearTimeout(timer);
        s.destroy();
        resolve(replies);
      }
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// ------------------------------------------------------------------------------------------
// Redis

export class Redis {
  constructor(port) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.proc = null;
    this.generation = 0;
  }

  static async start() {
    const r = new Redis(await freePort());
    await r.start();
    return r;
  }

  async start() {
    this.generation++;
    this.proc = new Proc(`redis-${this.port}`, process.env.REDIS_SERVER ?? "redis-server", [
      "--port", String(this.port),
      "--bind", "127.0.0.1",
      "--save", "",
      "--appendonly", "no",
      "--protected-mode", "yes",
      "--loglevel", "warning",
    ]).start();
    await waitFor(
      async () => {
        if (this.proc.exit) throw Object.assign(new Error(`redis-server exited: ${JSON.stringify(this.proc.exit)}\n${this.proc.output()}`), { fatal: true });
        return (await this.command(["PING"], 500)) === "PONG";
      },
      10000,
      `redis-server on port ${this.port}`,
    );
  }

  command(args, ms) {
    return redisCommand(this.port, args, ms);
  }

  /** SIGKILL (no clean shutdown, connections just drop). */
  async kill() {
    await this.proc?.kill();
    await waitFor(async () => !(await accepts(this.port)), 5000, `redis port ${this.port} to close`);
  }

  async restart() {
    await this.start();
  }

  async stop() {
    await this.proc?.stop(2000);
  }

  async numsub(adapter, nsp) {
    const reply =
      adapter === "sharded"
        ? await this.command(["PUBSUB", "SHARDNUMSUB", `socket.io#${nsp}#`])
        : adapter === "streams"
          ? await this.command(["PUBSUB", "NUMSUB", `socket.io#${nsp}#`])
          : await this.command(["PUBSUB", "NUMSUB", `socket.io-request#${nsp}#`]);
    return Number(reply[1]);
  }

  /** How many connections have sent an `XREAD` (a streams node's reader, once it reads). */
  async readers() {
    const list = String(await this.command(["CLIENT", "LIST"]));
    return list.split("\n").filter((l) => l.includes(" cmd=xread")).length;
  }

  publish(channel, payload, sharded = false) {
    return this.command([sharded ? "SPUBLISH" : "PUBLISH", channel, payload]);
  }

  async channels(sharded) {
    const reply = await this.command(["PUBSUB", sharded ? "SHARDCHANNELS" : "CHANNELS", "*"]);
    return reply.map((b) => b.toString());
  }
}

// ------------------------------------------------------------------------------------------
// Cluster nodes

export const NAMESPACES = ["/", "/chat"];

export class ClusterNode {
  constructor(kind, port, redis, adapter, extraEnv = {}) {
    this.kind = kind;
    this.port = port;
    this.name = String(port);
    this.url = `http://127.0.0.1:${port}`;
    this.redis = redis;
    this.adapter = adapter;
    const env = { PORT: String(port), REDIS_URL: redis.url, ADAPTER: adapter, RUST_LOG: process.env.RUST_LOG ?? "warn", ...extraEnv };
    this.proc =
      kind === "node"
        ? new Proc(`node-${port}`, process.execPath, [path.join(HERE, "node_server.mjs")], env)
        : new Proc(`roomcast-${port}`, ROOMCAST_BIN, [], env);
  }

  get label() {
    return `${this.kind}:${this.name}`;
  }

  async start() {
    if (this.kind === "roomcast" && !roomcastExists()) throw new Error(`roomcast cluster binary ${ROOMCAST_BIN} is missing (set ROOMCAST_CLUSTER_BIN)`);
    this.proc.start();
    await waitFor(
      async () => {
        if (this.proc.exit) throw Object.assign(new Error(`${this.label} exited: ${JSON.stringify(this.proc.exit)}\n${this.proc.output().slice(-3000)}`), { fatal: true });
        return accepts(this.port);
      },
      10000,
      `${this.label} to accept TCP`,
    );
    return this;
  }

  stop() {
    return this.proc.stop();
  }
}

/**
 * Waits until NUMSUB (classic: request channel, streams: main channel) / SHARDNUMSUB (sharded)
 * of both namespaces equals `count`, and for streams until `count` stream readers have sent
 * their first `XREAD` (a reader starts at `$`: what is added before it is never read), within
 * `ms` (the 10 s readiness bound).
 */
export async function waitCounted(redis, adapter, count, ms = 10000) {
  await waitFor(
    async () => {
      const counts = await Promise.all(NAMESPACES.map((n) => redis.numsub(adapter, n)));
      if (adapter === "streams") counts.push(await redis.readers());
      return counts.every((c) => c === count) || counts;
    },
    ms,
    `${adapter} NUMSUB to count ${count} node(s) on ${NAMESPACES.join(" and ")}`,
  );
}

/** Starts nodes of `kinds`; `env` is added to each node's environment (e.g. `RECOVERY_MS`). */
export async function startNodes(kinds, redis, adapter, env = {}) {
  const nodes = [];
  for (const kind of kinds) {
    const node = new ClusterNode(kind, await freePort(), redis, adapter, env);
    nodes.push(node);
  }
  // Started one after the other, so a node's readiness is its own (TCP then NUMSUB).
  for (let i = 0; i < nodes.length; i++) {
    await nodes[i].start();
    await waitCounted(redis, adapter, i + 1);
  }
  return nodes;
}

/** Output of the given nodes, for failure messages. */
export function nodeOutputs(nodes, tail = 4000) {
  return nodes.map((n) => `--- ${n.label} (${n.proc.logPath})\n${n.proc.output().slice(-tail)}`).join("\n");
}

// ------------------------------------------------------------------------------------------
// Peers: one Engine.IO connection (a Manager) with a socket on each namespace

export class Sock {
  constructor(peer, nsp, socket, name) {
    this.peer = peer;
    this.nsp = nsp;
    this.socket = socket;
    this.name = name;
    this.node = peer.node;
    this.rooms = new Set(); // the model: rooms besides the own id
    this.received = { msg: [], "server-ping": [], question: [] };
    // Streams protocol, recovery on: each event that went through the stream carries its entry
    // id as an extra last argument (kept apart here, in arrival order).
    this.offsets = { msg: [], "server-ping": [] };
    this.disconnects = [];
    this.silent = false;
    const streams = peer.node?.adapter === "streams";
    for (const ev of ["msg", "server-ping"])
      socket.on(ev, (...args) => {
        if (streams && args.length > 1 && typeof args.at(-1) === "string" && /^[0-9]+-[0-9]+$/.test(args.at(-1))) {
          args.offset = args.pop();
          this.offsets[ev].push(args.offset);
        }
        this.received[ev].push(args);
      });
    socket.on("question", (q, ack) => {
      this.received.question.push([q]);
      const silent = Array.isArray(q?.silent) && q.silent.includes(this.name);
      if (!silent && typeof ack === "function") ack(this.name);
    });
    socket.on("disconnect", (reason) => this.disconnects.push(reason));
  }

  get id() {
    return this.socket.id;
  }

  get alive() {
    return this.socket.connected;
  }

  /** emitWithAck with a deadline. */
  ask(event, arg, ms = 10000) {
    const s = this.socket.timeout(ms);
    return arg === undefined ? s.emitWithAck(event) : s.emitWithAck(event, arg);
  }

  toString() {
    return `${this.name}@${this.node.name}${this.nsp}`;
  }
}

export class Peer {
  constructor(node, base, transports) {
    this.node = node;
    this.base = base;
    this.transports = transports;
    this.manager = new Manager(node.url, { reconnection: false, timeout: 5000, transports, forceNew: true });
    this.socks = {};
    for (const nsp of NAMESPACES) {
      const name = `${base}${nsp === "/" ? "" : "-chat"}`;
      this.socks[nsp] = new Sock(this, nsp, this.manager.socket(nsp, { auth: { name } }), name);
    }
  }

  async connect(ms = 5000) {
    await Promise.all(
      Object.values(this.socks).map(
        (s) =>
          new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`${s} did not connect within ${ms} ms`)), ms);
            s.socket.once("connect", () => {
              clearTimeout(t);
              resolve();
            });
            s.socket.once("connect_error", (e) => {
              clearTimeout(t);
              reject(new Error(`${s}: connect_error ${e?.message}`));
            });
          }),
      ),
    );
    return this;
  }

  close() {
    for (const s of Object.values(this.socks)) {
      try {
        s.socket.disconnect();
      } catch {
        /* gone */
      }
    }
    try {
      this.manager.engine?.close();
    } catch {
      /* gone */
    }
  }
}

/** The set of every client socket, with the model of their rooms. */
export class World {
  constructor(nodes) {
    this.nodes = nodes;
    this.peers = [];
  }

  async addPeer(node, base, transports = ["websocket"]) {
    const p = new Peer(node, base, transports);
    this.peers.push(p);
    await p.connect();
    return p;
  }

  /** Every socket still part of the model (both namespaces). */
  get socks() {
    return this.peers.flatMap((p) => Object.values(p.socks)).filter((s) => !s.gone);
  }

  sock(name) {
    const s = this.socks.find((x) => x.name === name);
    if (!s) throw new Error(`no socket named ${name}`);
    return s;
  }

  /** The model of `(node ? node-local : cluster).in(rooms).except(except)` on namespace `nsp`. */
  select(nsp, { rooms = [], except = [], node = null, notSelf = null } = {}) {
    const inAny = (s, list) => list.some((r) => r === s.id || s.rooms.has(r));
    return this.socks.filter(
      (s) =>
        s.nsp === nsp &&
        (node === null || s.node === node) &&
        (rooms.length === 0 || inAny(s, rooms)) &&
        !inAny(s, except) &&
        s !== notSelf,
    );
  }

  closeAll() {
    for (const p of this.peers) p.close();
  }
}

// ------------------------------------------------------------------------------------------
// Payloads and comparisons

/** A payload with binary at several depths, floats, integers beyond 2^32 and non-ASCII UTF-8. */
export function payload(tag) {
  return {
    tag,
    text: "héllo 世界 🎉",
    floats: [0.1, -2.5e-7, 1e300, 3.141592653589793],
    ints: [2 ** 40 + 7, -(2 ** 35) - 3, 4294967296, 0, -1],
    bin: Buffer.from([0, 1, 2, 253, 254, 255]),
    nested: { deeper: [{ b: Buffer.from("été ✓", "utf8"), n: null, t: true, f: false }, Buffer.alloc(300, 7)], "ключ": "значение" },
  };
}

/** Binary of any kind → {$bin: hex}, recursively, so deepEqual compares values not types. */
export function norm(x) {
  if (Buffer.isBuffer(x)) return { $bin: x.toString("hex") };
  if (x instanceof ArrayBuffer) return { $bin: Buffer.from(x).toString("hex") };
  if (ArrayBuffer.isView(x)) return { $bin: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("hex") };
  if (Array.isArray(x)) return x.map(norm);
  if (x && typeof x === "object") {
    const o = {};
    for (const k of Object.keys(x)) o[k] = norm(x[k]);
    return o;
  }
  return x;
}

/** Asserts the received value equals `sent`, binary leaves received as binary. */
export function assertSame(received, sent, what) {
  assert.deepEqual(norm(received), norm(sent), `${what}: payload changed`);
  const bins = (x, p = "$") =>
    Buffer.isBuffer(x) || x instanceof ArrayBuffer || ArrayBuffer.isView(x)
      ? [p]
      : Array.isArray(x)
        ? x.flatMap((v, i) => bins(v, `${p}[${i}]`))
        : x && typeof x === "object"
          ? Object.entries(x).flatMap(([k, v]) => bins(v, `${p}.${k}`))
          : [];
  assert.deepEqual(bins(received), bins(sent), `${what}: binary leaves`);
}

/** What a Node node makes of a value it forwards as JSON (classic requests): Buffer → toJSON. */
export const jsonRoundTrip = (x) => JSON.parse(JSON.stringify(x));

/**
 * What a value becomes when a Node node (or the emitter) publishes it as msgpack: notepack.io
 * 3.0.1 encodes every integer-valued number as an integer, so |x| >= 2^64 (e.g. 1e300) is
 * mangled (1e300 arrives as 0). Receivers then see exactly this.
 */
export const notepackRoundTrip = (x) => notepack.decode(notepack.encode(x));

// ------------------------------------------------------------------------------------------
// Exact-recipient checks

export const SETTLE_MS = Number(process.env.CLUSTER_SETTLE_MS ?? 400);

/**
 * Waits until every socket of `expected` has received `event` whose `pick(args)` has tag `tag`,
 * then `settle` ms more, and asserts: each expected socket exactly once, nobody else of the
 * whole world (both namespaces). Returns Map sock → args.
 */
export async function expectRecipients(world, event, tag, expected, { pick = (args) => args[0]?.tag, ms = 5000, settle = SETTLE_MS, what = tag } = {}) {
  const hits = (s) => s.received[event].filter((args) => pick(args) === tag);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !expected.every((s) => hits(s).length >= 1)) await sleep(20);
  await sleep(settle);
  const got = new Map();
  const problems = [];
  for (const s of world.socks.concat(world.peers.flatMap((p) => Object.values(p.socks)).filter((s) => s.gone))) {
    const h = hits(s);
    const want = expected.includes(s) ? 1 : 0;
    if (h.length !== want) problems.push(`${s} got ${h.length} (expected ${want})`);
    if (h.length) got.set(s, h[0]);
  }
  if (problems.length) {
    throw new assert.AssertionError({
      message: `${what}: "${event}" recipients wrong: ${problems.join("; ")}; expected {${expected.map(String).sort().join(", ")}}`,
    });
  }
  return got;
}

export const names = (socks) => socks.map((s) => s.name).sort(byString);

/** The `fetch` ack the model predicts for `socks`. */
export function fetchModel(socks) {
  return socks
    .map((s) => ({ id: s.id, node: s.node.name, name: s.name, rooms: [...s.rooms].sort(byString) }))
    .sort((a, b) => byString(a.id, b.id));
}

/** Every live socket still connected? (a whoami round trip on each) */
export async function assertAllAlive(world, what = "") {
  await Promise.all(
    world.socks.map(async (s) => {
      assert.ok(s.alive, `${what} ${s} should still be connected (disconnects: ${s.disconnects})`);
      const me = await s.ask("whoami", undefined, 5000);
      assert.deepEqual(me, { node: s.node.name, id: s.id, nsp: s.nsp });
    }),
  );
}

// ------------------------------------------------------------------------------------------
// A standard cluster with peers: nodes[i] gets `perNode` peers named p<i><j> (the last of them
// over long-polling), joined to rooms by a fixed pattern.

export const ROOM_PATTERN = {
  // index of the peer in the cluster (p00 p01 p02 on the first node = 0 1 2, p10 p11 p12 on the
  // second = 3 4 5) → rooms, different per namespace so that anything crossing namespaces shows.
  // `/`: red = p00 p02 p11, blue = p02 p10 (p02 in both), green = p12.
  "/": { 0: ["red"], 2: ["red", "blue"], 3: ["blue"], 4: ["red"], 5: ["green"] },
  // `/chat`: red = p01 p10 p12, blue = p00 p10, green = p11.
  "/chat": { 0: ["blue"], 1: ["red"], 3: ["red", "blue"], 4: ["green"], 5: ["red"] },
};

export async function setUpCluster(kinds, adapter, { perNode = 3, extra = 0 } = {}) {
  const redis = await Redis.start();
  const nodes = await startNodes(kinds, redis, adapter);
  const world = new World(nodes);
  world.redis = redis;
  let i = 0;
  for (const [n, node] of nodes.entries()) {
    for (let j = 0; j < perNode + extra; j++, i++) {
      const polling = j === perNode - 1;
      const peer = await world.addPeer(node, `p${n}${j}`, polling ? ["polling"] : ["websocket"]);
      peer.index = i;
      if (j >= perNode) continue; // extras: no rooms
      for (const nsp of NAMESPACES) {
        const rooms = ROOM_PATTERN[nsp][i] ?? [];
        if (!rooms.length) continue;
        const s = peer.socks[nsp];
        const ack = await s.ask("join", rooms);
        assert.deepEqual(ack, [...rooms].sort(byString), `join ack of ${s}`);
        rooms.forEach((r) => s.rooms.add(r));
      }
    }
  }
  world.stop = async () => {
    world.closeAll();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  };
  return world;
}

/** Appends the nodes' output to an assertion failure. */
export async function withLogs(world, fn) {
  try {
    return await fn();
  } catch (e) {
    e.message += `\n${nodeOutputs(world.nodes, 2500)}`;
    throw e;
  }
}

export { execFileSync };
