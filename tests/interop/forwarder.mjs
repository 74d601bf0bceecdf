// A loopback TCP forwarder for the interop tests: clients connect to it, it connects each one
// to the server and copies bytes both ways. A test can then break the path under a client
// without the client's or the server's cooperation:
//
//   reset()   destroys every pair with a TCP RST (toward the client, and toward the server
//             unless { server: false }: then the server's side stays open and silent, as if
//             the client had vanished without a word)
//   pause()   stops copying bytes on every pair, and holds connections made meanwhile, without
//             closing anything (the kernel buffers what is written meanwhile)
//   resume()  copies again, on the old pairs and on the held ones
//
// Only 127.0.0.1.

import net from "node:net";

/**
 * Starts a forwarder to 127.0.0.1:`target`; resolves once it listens. `tap(direction, chunk)`,
 * if given, sees every chunk copied (`"up"` toward the server, `"down"` toward the client).
 */
export async function forwarder(target, { tap } = {}) {
  const pairs = new Set();
  const stale = new Set(); // server-side halves left open by reset({ server: false })
  let paused = false;
  let accepted = 0;

  const drop = (pair) => {
    if (!pairs.delete(pair)) return;
    pair.client.destroy();
    pair.server.destroy();
  };

  // Copies from `from` to `to`, with backpressure, unless the forwarder is paused.
  const link = (pair, from, to, direction) => {
    from.on("data", (chunk) => {
      tap?.(direction, chunk);
      if (!to.write(chunk)) {
        from.pause();
        to.once("drain", () => {
          if (!paused && pairs.has(pair)) from.resume();
        });
      }
    });
    // A clean end travels on as a clean end; anything else ends the pair.
    from.on("end", () => to.end());
    from.on("error", () => drop(pair));
    from.on("close", () => drop(pair));
  };

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    const upstream = net.connect({ host: "127.0.0.1", port: target });
    upstream.pause();
    const pair = { client, server: upstream };
    pairs.add(pair);
    link(pair, client, upstream, "up");
    link(pair, upstream, client, "down");
    upstream.once("connect", () => {
      if (!paused && pairs.has(pair)) {
        client.resume();
        upstream.resume();
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const port = server.address().port;

  const rst = (s) => {
    try {
      if (s.readyState === "open" || s.readyState === "readOnly" || s.readyState === "writeOnly") {
        s.resetAndDestroy();
        return;
      }
    } catch {
      /* fall through */
    }
    s.destroy();
  };

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    /** How many client connections it accepted so far. */
    get accepted() {
      return accepted;
    },
    /** How many pairs are open now. */
    get open() {
      return pairs.size;
    },
    reset({ server: toServer = true } = {}) {
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        rst(pair.client);
        if (toServer) {
          rst(pair.server);
        } else {
          // Keep it open, read and discard nothing: the server's writes pile up unanswered.
          pair.server.removeAllListeners("data");
          pair.server.pause();
          pair.server.on("error", () => {});
          stale.add(pair.server);
        }
      }
    },
    pause() {
      paused = true;
      for (const { client, server: upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      paused = false;
      for (const { client, server: upstream } of pairs) {
        if (upstream.connecting) continue; // its "connect" handler resumes it
        client.resume();
        upstream.resume();
      }
    },
    /** Closes everything (pairs with RST) and stops listening. */
    async close() {
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        rst(pair.client);
        rst(pair.server);
      }
      for (const s of stale) s.destroy();
      stale.clear();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
