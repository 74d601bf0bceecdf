// Shared helpers for the interop tests: the official socket.io-client against roomcast's
// example servers. `run.sh` starts the example a test file names in its `// @example` line
// and hands its address over in the environment:
//
//   ROOMCAST_URL         http://127.0.0.1:<port>
//   ROOMCAST_PORT        <port>
//   ROOMCAST_SERVER_PID  the pid of the example process run.sh started
//   ROOMCAST_EXAMPLE     the path of the example binary (so a test can restart it)
//
// Every wait here has a deadline, so a misbehaving server fails a test instead of hanging it.

import { io, Manager } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { spawn } from "node:child_process";
import net from "node:net";

export const PORT = Number(process.env.ROOMCAST_PORT ?? 3000);
export const URL = process.env.ROOMCAST_URL ?? `http://127.0.0.1:${PORT}`;

const opened = new Set();

/**
 * The client's parser, as the server's `PARSER` (the `// @env PARSER=msgpack` line of a test file
 * sets both): `socket.io-msgpack-parser` for `msgpack`, the default parser otherwise. A parser
 * belongs to a whole server (nothing on the wire names it), so every client of a test file uses it.
 */
export const PARSER = process.env.PARSER === "msgpack" ? "msgpack" : "json";
export const parserOpts = PARSER === "msgpack" ? { parser: msgpackParser } : {};

/** A new client (its own Engine.IO connection) to namespace `nsp`. Reconnection off unless asked. */
export function client(nsp = "/", opts = {}) {
  return clientTo(URL, nsp, opts);
}

/** `client`, to the server at `base` (`http://127.0.0.1:<port>`, a forwarder's for instance). */
export function clientTo(base, nsp = "/", opts = {}) {
  const socket = io(base + nsp, {
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    ...parserOpts,
    ...opts,
  });
  opened.add(socket);
  return socket;
}

/** A Manager (one Engine.IO connection) on which several namespaces can be opened. */
export function manager(opts = {}) {
  const m = new Manager(URL, { reconnection: false, timeout: 5000, ...parserOpts, ...opts });
  const socket = m.socket.bind(m);
  m.socket = (nsp, o) => {
    const s = socket(nsp, o);
    opened.add(s);
    return s;
  };
  return m;
}

/** Disconnects every client made by `client`/`manager` so far. */
export function closeAll() {
  for (const s of opened) {
    try {
      s.disconnect();
      s.io.engine?.close();
    } catch {
      /* already gone */
    }
  }
  opened.clear();
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the argument list of the next `event` on `emitter`, rejects after `ms`. */
export function once(emitter, event, ms = 3000, what = "") {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"${what ? ` (${what})` : ""}`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, handler);
  });
}

/** Resolves when `socket` is connected; rejects on `connect_error` or after `ms`. */
export function connected(socket, ms = 5000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms waiting for "connect" on ${socket.nsp}`));
    }, ms);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`connect_error on ${socket.nsp}: ${err?.message} ${JSON.stringify(err?.data)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Resolves with the `connect_error` error; rejects if the socket connects instead, or after `ms`. */
export function connectError(socket, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms waiting for "connect_error" on ${socket.nsp}`));
    }, ms);
    const onConnect = () => {
      cleanup();
      reject(new Error(`${socket.nsp} connected, but a connect_error was expected`));
    };
    const onError = (err) => {
      cleanup();
      resolve(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/**
 * Records every `event` on `socket` from now on. `until(n, ms)` waits for at least n arrivals.
 */
export function record(socket, event) {
  const list = [];
  const waiters = [];
  socket.on(event, (...args) => {
    list.push(args);
    for (const w of [...waiters]) {
      if (list.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(list);
      }
    }
  });
  return {
    list,
    until(n, ms = 3000) {
      if (list.length >= n) return Promise.resolve(list);
      return new Promise((resolve, reject) => {
        const w = { n, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(
            new Error(
              `timed out after ${ms} ms waiting for ${n} "${event}" on ${socket.nsp}, got ${list.length}: ` +
                JSON.stringify(list).slice(0, 500),
            ),
          );
        }, ms);
        waiters.push(w);
      });
    },
  };
}

/** Normalises received binary (Buffer, ArrayBuffer, typed arrays) to Buffer for comparisons. */
export function asBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  throw new Error(`not binary: ${Object.prototype.toString.call(x)} ${JSON.stringify(x)}`.slice(0, 300));
}

export const isBinary = (x) => Buffer.isBuffer(x) || x instanceof ArrayBuffer || ArrayBuffer.isView(x);

/** True if something accepts TCP connections on 127.0.0.1:port. */
export function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await sleep(25);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Is process `pid` gone (or a zombie)? */
export async function processGone(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const { readFile } = await import("node:fs/promises");
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** A TCP port free on 127.0.0.1 right now. */
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

/**
 * Starts the example binary again on PORT; resolves with the child once it accepts connections.
 * `env` is laid over this process's environment (a value of `undefined` removes the variable).
 */
export async function startExample(bin = process.env.ROOMCAST_EXAMPLE, port = PORT, env = {}) {
  if (!bin) throw new Error("ROOMCAST_EXAMPLE is not set (run through tests/interop/run.sh)");
  const childEnv = { ...process.env, PORT: String(port), RUST_LOG: process.env.RUST_LOG ?? "warn", ...env };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const child = spawn(bin, [], {
    env: childEnv,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      /* gone */
    }
  };
  process.once("exit", kill);
  let exited = null;
  child.once("exit", (code, signal) => (exited = { code, signal }));
  await waitFor(
    async () => {
      if (exited) throw new Error(`${bin} exited early: ${JSON.stringify(exited)}`);
      return accepts(port);
    },
    10000,
    `${bin} to accept connections on port ${port}`,
  );
  return child;
}

/** Sends SIGTERM to `pid` and waits until it is gone and its port refuses connections. */
export async function stopProcess(pid, port = PORT, ms = 5000) {
  process.kill(pid, "SIGTERM");
  await waitFor(async () => (await processGone(pid)) && !(await accepts(port)), ms, `pid ${pid} to exit on SIGTERM`);
}
