// The reference implementation of roomcast's `cluster` example (issue 8) in Node:
// socket.io 4.8 + @socket.io/redis-adapter 8.3 over node-redis 4. It is the Node node of the
// mixed clusters in the cluster tests and the Node half of the cluster benchmark.
//
//   PORT=3301 REDIS_URL=redis://127.0.0.1:6379 ADAPTER=classic node tests/cluster/node_server.mjs
//
// PORT       listen on 127.0.0.1:$PORT only; the node's name is String(PORT)
// REDIS_URL  the only Redis it talks to
// ADAPTER    classic (default): createAdapter(pub, sub) with its defaults;
//            sharded: createShardedAdapter(pub, sub) with its defaults;
//            streams: createAdapter(pub) of @socket.io/redis-streams-adapter 0.3.1 with its
//            defaults, and connection state recovery on (streams mode only)
// RECOVERY_MS streams only: connectionStateRecovery.maxDisconnectionDuration (default 30000);
//            skipMiddlewares is true
//
// Prints `ready <name> <adapter>` on stdout once it listens and both namespaces are subscribed.
// Stops cleanly on SIGTERM (and SIGINT).
//
// Deviations from a bare socket.io server, all of them so that it keeps to the contract:
//  - `all-rooms` acks `{ error: "unsupported" }` when the adapter has no `allRooms()` (the
//    sharded ClusterAdapter: calling it would throw "nsp.adapter.allRooms is not a function").
//  - Hostile messages on the Redis channels are dropped with a log line (see guardAdapter): a
//    bare Node node dies of one garbage PUBLISH on `socket.io#/#`. Anything else thrown or
//    rejected outside of a handler is logged (`uncaught exception|rejection: ...`), not fatal.
//    NODE_SERVER_UNGUARDED=1 turns both off, to see what a bare Node node does.

import http from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const PORT = Number(process.env.PORT);
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const ADAPTER = process.env.ADAPTER || "classic";
const NAME = String(PORT);

if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error(`node_server: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
if (ADAPTER !== "classic" && ADAPTER !== "sharded" && ADAPTER !== "streams") {
  console.error(`node_server: ADAPTER must be classic, sharded or streams, got ${JSON.stringify(ADAPTER)}`);
  process.exit(2);
}

const log = (...args) => console.error(`node_server ${NAME}:`, ...args);

// NODE_SERVER_UNGUARDED=1 leaves these out (to see what a bare Node node does with hostile input).
if (process.env.NODE_SERVER_UNGUARDED !== "1") {
  process.on("uncaughtException", (err) => log(`uncaught exception: ${err?.stack ?? err}`));
  process.on("unhandledRejection", (err) => log(`uncaught rejection: ${err?.stack ?? err}`));
}

// Redis clients: errors are logged (rate-limited: a reconnect loop would flood stderr) and
// otherwise left to node-redis, which reconnects and resubscribes on its own. The connection
// name lets the harness find this node's connections in `CLIENT LIST` (the streams adapter's
// duplicates inherit it: readiness waits for its `XREAD`).
function redisClient() {
  const c = createClient({ url: REDIS_URL, name: `node-${NAME}` });
  let last = 0;
  c.on("error", (err) => {
    const now = Date.now();
    if (now - last > 1000) {
      last = now;
      log(`redis error: ${err?.message ?? err}`);
    }
  });
  return c;
}
const pub = redisClient();
const sub = pub.duplicate();
{
  let last = 0;
  sub.on("error", (err) => {
    const now = Date.now();
    if (now - last > 1000) {
      last = now;
      log(`redis (sub) error: ${err?.message ?? err}`);
    }
  });
}
await Promise.all([pub.connect(), sub.connect()]);

const STREAMS = ADAPTER === "streams";
const RECOVERY_MS = Number(process.env.RECOVERY_MS ?? 30000);
// The streams adapter takes one client and duplicates it itself (Pub/Sub, one XREAD per stream).
const adapter = STREAMS ? createStreamsAdapter(pub) : ADAPTER === "sharded" ? createShardedAdapter(pub, sub) : createAdapter(pub, sub);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  adapter,
  ...(STREAMS ? { connectionStateRecovery: { maxDisconnectionDuration: RECOVERY_MS, skipMiddlewares: true } } : {}),
});

const byString = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const asList = (x) => (x === undefined || x === null ? [] : Array.isArray(x) ? x : [x]);
const sortedRooms = (socket) => [...socket.rooms].filter((r) => r !== socket.id).sort(byString);
const sortedResponses = (responses) => [...(responses ?? [])].sort(byString);

/** The operator `(local ? nsp.local : nsp).to(rooms).except(except)`. */
function select(nsp, arg, local = false) {
  const base = local ? nsp.local : nsp;
  return base.to(asList(arg?.rooms)).except(asList(arg?.except));
}

function setUp(nsp) {
  nsp.on("connection", (socket) => {
    socket.data = { node: NAME };

    // Every client event: last argument is the ack; any failure acks { error }.
    const on = (event, handler) =>
      socket.on(event, async (...args) => {
        const ack = typeof args[args.length - 1] === "function" ? args.pop() : () => {};
        try {
          await handler(args[0], ack);
        } catch (err) {
          ack({ error: String(err?.message ?? err) });
        }
      });

    on("whoami", (_arg, ack) => ack({ node: NAME, id: socket.id, nsp: nsp.name }));

    on("join", async (arg, ack) => {
      await socket.join(arg);
      ack(sortedRooms(socket));
    });

    on("leave", async (arg, ack) => {
      for (const r of asList(arg)) await socket.leave(r);
      ack(sortedRooms(socket));
    });

    on("to", (arg, ack) => {
      select(nsp, arg, !!arg?.local).emit("msg", arg?.payload);
      ack(true);
    });

    on("broadcast", (arg, ack) => {
      socket.broadcast.to(asList(arg?.rooms)).except(asList(arg?.except)).emit("msg", arg?.payload);
      ack(true);
    });

    on("fetch", async (arg, ack) => {
      const base = arg?.local ? nsp.local : nsp;
      const sockets = await base.in(asList(arg?.rooms)).except(asList(arg?.except)).fetchSockets();
      const list = sockets.map((s) => ({
        id: s.id,
        node: s.data?.node,
        name: s.handshake?.auth?.name,
        rooms: [...s.rooms].filter((r) => r !== s.id).sort(byString),
      }));
      list.sort((a, b) => byString(a.id, b.id));
      ack(list);
    });

    on("sockets-join", (arg, ack) => {
      nsp.in(asList(arg?.rooms)).except(asList(arg?.except)).socketsJoin(arg?.join);
      ack(true);
    });

    on("sockets-leave", (arg, ack) => {
      nsp.in(asList(arg?.rooms)).except(asList(arg?.except)).socketsLeave(arg?.leave);
      ack(true);
    });

    on("disconnect-sockets", (arg, ack) => {
      ack(true);
      nsp.in(asList(arg?.rooms)).except(asList(arg?.except)).disconnectSockets(!!arg?.close);
    });

    on("server-emit", (arg, ack) => {
      nsp.serverSideEmit("cluster-ping", arg?.payload);
      ack(true);
    });

    on("server-emit-ack", async (arg, ack) => {
      try {
        const responses = await nsp.serverSideEmitWithAck("cluster-ask", arg?.payload);
        ack({ err: null, responses: sortedResponses(responses) });
      } catch (err) {
        ack({ err: String(err?.message ?? err), responses: sortedResponses(err?.responses) });
      }
    });

    on("broadcast-ack", (arg, ack) => {
      nsp
        .to(asList(arg?.rooms))
        .except(asList(arg?.except))
        .timeout(arg?.timeout)
        .emit("question", arg?.question, (err, responses) => {
          ack({ err: err ? String(err.message ?? err) : null, responses: sortedResponses(responses) });
        });
    });

    on("all-rooms", async (_arg, ack) => {
      if (typeof nsp.adapter.allRooms !== "function") return ack({ error: "unsupported" });
      const rooms = await nsp.adapter.allRooms();
      ack({ rooms: [...rooms].sort(byString) });
    });
  });

  // Server-side events from the other nodes or from @socket.io/redis-emitter.
  nsp.on("cluster-ping", (payload) => {
    nsp.local.emit("server-ping", { node: NAME, payload });
  });
  nsp.on("cluster-ask", (_payload, cb) => {
    if (typeof cb === "function") cb(NAME);
  });
}

const namespaces = [io.of("/"), io.of("/chat")];
namespaces.forEach(setUp);
namespaces.forEach(guardAdapter);

// The adapters decode and act on whatever arrives on their channels. A garbage message on the
// broadcast channel makes `RedisAdapter.onmessage` throw inside node-redis' reply parser: that
// kills a bare Node node (uncaught exception), and with a process-level handler alone the
// subscriber connection stops delivering anything after it. So every entry point from Redis is
// wrapped here: the message is dropped with a log line and the node carries on.
function guardAdapter(nsp) {
  const a = nsp.adapter;
  let logged = 0;
  const drop = (where, err) => {
    if (logged++ < 50) log(`hostile message dropped (${nsp.name} ${where}): ${String(err?.message ?? err).slice(0, 200)}`);
  };
  if (process.env.NODE_SERVER_UNGUARDED === "1") return;
  for (const method of ["onmessage", "onRawMessage"]) {
    if (typeof a[method] !== "function") continue;
    const orig = a[method].bind(a);
    a[method] = (...args) => {
      try {
        const r = orig(...args);
        if (r && typeof r.catch === "function") r.catch((err) => drop(method, err));
        return r;
      } catch (err) {
        drop(method, err);
      }
    };
  }
  if (typeof a.onrequest === "function") {
    const orig = a.onrequest.bind(a);
    a.onrequest = (...args) => {
      try {
        return orig(...args).catch((err) => drop("onrequest", err));
      } catch (err) {
        drop("onrequest", err);
      }
    };
  }
}

await new Promise((resolve, reject) => {
  httpServer.once("error", reject);
  httpServer.listen(PORT, "127.0.0.1", resolve);
});

// Subscribed = this node's own per-adapter channel is known to Redis for both namespaces
// (classic: `socket.io-response#<nsp>#<uid>#`, sharded and streams: `socket.io#<nsp>#<uid>#`;
// the uid is this node's, so the check counts nobody else). Streams: also its stream reader has
// sent its first `XREAD` (it starts at `$`: entries added before it are never read).
const ownChannel = (nsp) =>
  ADAPTER === "classic" ? `socket.io-response#${nsp.name}#${nsp.adapter.uid}#` : `socket.io#${nsp.name}#${nsp.adapter.uid}#`;
const reading = async () => {
  if (!STREAMS) return true;
  const list = String(await pub.sendCommand(["CLIENT", "LIST"]));
  return list.split("\n").some((l) => l.includes(` name=node-${NAME} `) && l.includes(" cmd=xread"));
};
for (const deadline = Date.now() + 10000; ; ) {
  const counts = await Promise.all(
    namespaces.map(async (nsp) => {
      const reply = await pub.sendCommand(["PUBSUB", ADAPTER === "sharded" ? "SHARDNUMSUB" : "NUMSUB", ownChannel(nsp)]);
      return Number(reply[1]);
    }),
  );
  if (counts.every((n) => n === 1) && (await reading())) break;
  if (Date.now() > deadline) {
    log(`not subscribed after 10 s: ${counts}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 20));
}
console.log(`ready ${NAME} ${ADAPTER}`);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  setTimeout(() => process.exit(0), 3000).unref();
  try {
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit()]);
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
