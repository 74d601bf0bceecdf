// @example fanout
//
// docs/EXAMPLES.md `fanout` with 1,000 official clients over WebSocket: one client emits
// `broadcast` N times; every other client gets every `news` exactly once, the sender none.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { client, closeAll, connected, record, sleep, asBuffer, isBinary } from "./lib.mjs";

const CLIENTS = Number(process.env.FANOUT_CLIENTS ?? 1000);
const BROADCASTS = Number(process.env.FANOUT_BROADCASTS ?? 20);
const BATCH = 100; // connections opened concurrently

after(() => closeAll());

test("`broadcast` passes any arguments through, binary included, to the others only", { timeout: 10000 }, async () => {
  const sockets = [0, 1, 2].map(() => client("/", { transports: ["websocket"] }));
  await Promise.all(sockets.map((s) => connected(s)));
  const recs = sockets.map((s) => record(s, "news"));
  const bytes = Buffer.from([0, 128, 255]);
  sockets[0].emit("broadcast", "text", 42, { bin: bytes }, bytes);
  sockets[0].emit("broadcast");
  await Promise.all([recs[1].until(2), recs[2].until(2)]);
  for (const r of [recs[1], recs[2]]) {
    const [first, second] = r.list;
    assert.equal(first.length, 4);
    assert.equal(first[0], "text");
    assert.equal(first[1], 42);
    assert.ok(isBinary(first[2].bin) && isBinary(first[3]), `binary expected, got ${JSON.stringify(first)}`);
    assert.deepEqual(asBuffer(first[2].bin), bytes);
    assert.deepEqual(asBuffer(first[3]), bytes);
    assert.deepEqual(second, []);
  }
  await sleep(200);
  assert.equal(recs[0].list.length, 0, "the sender gets none");
  assert.equal(recs[1].list.length, 2);
  closeAll();
});

test(`${CLIENTS} WebSocket clients, ${BROADCASTS} broadcasts: each other client gets each once`, { timeout: 90000 }, async () => {
  const t0 = Date.now();
  const sockets = [];
  // received[i] maps a broadcast's seq to how many times client i got it
  const received = [];
  const order = []; // order[i]: the seqs client i got, in arrival order
  const malformed = [];
  let total = 0;
  let allArrived;
  const arrived = new Promise((r) => (allArrived = r));
  const expected = (CLIENTS - 1) * BROADCASTS;

  for (let start = 0; start < CLIENTS; start += BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(CLIENTS, start + BATCH); i++) {
      const s = client("/", { transports: ["websocket"], timeout: 20000 });
      const counts = new Map();
      received[i] = counts;
      const seen = (order[i] = []);
      s.on("news", (...args) => {
        const [payload, tail] = args;
        if (args.length !== 2 || typeof payload?.seq !== "number" || payload.text !== `news #${payload.seq}` || tail !== "tail") {
          malformed.push({ client: i, args });
          return;
        }
        counts.set(payload.seq, (counts.get(payload.seq) ?? 0) + 1);
        seen.push(payload.seq);
        if (++total === expected) allArrived();
      });
      sockets.push(s);
      batch.push(connected(s, 30000));
    }
    await Promise.all(batch);
  }
  const tConnected = Date.now();
  assert.equal(sockets.filter((s) => s.connected).length, CLIENTS);
  assert.equal(new Set(sockets.map((s) => s.id)).size, CLIENTS, "socket ids are unique");

  const sender = 0;
  for (let seq = 0; seq < BROADCASTS; seq++) {
    sockets[sender].emit("broadcast", { seq, text: `news #${seq}` }, "tail");
  }

  let timer;
  const timeout = new Promise((r) => (timer = setTimeout(() => r("timeout"), 45000)));
  const outcome = await Promise.race([arrived.then(() => "done"), timeout]);
  clearTimeout(timer);
  // Give duplicates (or messages to the sender) a chance to show up.
  await sleep(500);
  const tDone = Date.now();

  assert.deepEqual(malformed.slice(0, 5), [], `malformed news (${malformed.length})`);
  assert.equal(received[sender].size, 0, `the sender received ${received[sender].size} of its own broadcasts`);
  const missing = [];
  const duplicated = [];
  for (let i = 0; i < CLIENTS; i++) {
    if (i === sender) continue;
    for (let seq = 0; seq < BROADCASTS; seq++) {
      const n = received[i].get(seq) ?? 0;
      if (n === 0) missing.push({ client: i, seq });
      if (n > 1) duplicated.push({ client: i, seq, n });
    }
  }
  assert.deepEqual(duplicated.slice(0, 10), [], `${duplicated.length} duplicated deliveries`);
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} missing deliveries (${outcome})`);
  assert.equal(total, expected);
  const outOfOrder = order.filter((seqs) => seqs.some((x, k) => k > 0 && x < seqs[k - 1]));
  assert.equal(outOfOrder.length, 0, `clients that got the broadcasts out of order: ${outOfOrder.length}`);
  assert.equal(outcome, "done");
  // Everyone is still connected after the burst.
  assert.equal(sockets.filter((s) => s.connected).length, CLIENTS);
  console.log(
    `# fanout: ${CLIENTS} clients connected in ${tConnected - t0} ms; ` +
      `${expected} deliveries in ${tDone - tConnected - 500} ms`,
  );
});
