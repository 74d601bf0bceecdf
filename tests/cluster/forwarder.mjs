// A loopback TCP forwarder for the cluster tests: what a load balancer in front of the nodes
// does, under the test's control. Each accepted client connection is joined to a new
// connection to the current target; the target can be switched (failover), every current
// pair reset with a TCP RST on the client side (a balancer dropping its connections), and the
// forwarding paused without closing anything (a stalled path: pings go unanswered).
//
//   const fwd = await new Forwarder(nodeA.port).listen();
//   io(`http://127.0.0.1:${fwd.port}`) ...
//   fwd.setTarget(null);   // new connections are reset at once (nothing behind the balancer)
//   fwd.reset();           // every client gets a RST
//   fwd.setTarget(nodeB.port);
//   await fwd.close();

import net from "node:net";

export class Forwarder {
  /** `target`: the port (on `host`) new connections go to; `null` refuses them. */
  constructor(target, host = "127.0.0.1") {
    this.host = host;
    this.target = target;
    this.pairs = new Set();
    this.paused = false;
    this.accepted = 0;
    this.server = net.createServer((client) => this.#accept(client));
  }

  /** Listens on `port` (0: a free one) of 127.0.0.1; resolves with this (`this.port` set). */
  listen(port = 0) {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.port = this.server.address().port;
        this.url = `http://127.0.0.1:${this.port}`;
        resolve(this);
      });
    });
  }

  #accept(client) {
    this.accepted++;
    client.on("error", () => {});
    if (this.target === null || this.target === undefined) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: this.host, port: this.target });
    upstream.on("error", () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.once("close", drop);
    upstream.once("close", drop);
    // Plain `data` handlers, not `pipe`: `pipe` may resume a source on its own (on drain),
    // and `pause()` must hold until `resume()`. Loopback and test volumes: no backpressure.
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => client.write(d));
    client.once("end", () => upstream.end());
    upstream.once("end", () => client.end());
    if (this.paused) {
      client.pause();
      upstream.pause();
    }
  }

  /** Where new connections go from now on (current pairs stay on their node); `null` refuses them. */
  setTarget(port) {
    this.target = port;
  }

  /** Drops every current pair: the client side gets a TCP RST, the node side a close. */
  reset() {
    for (const pair of [...this.pairs]) {
      this.pairs.delete(pair);
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
    }
  }

  /** Stops forwarding bytes in both directions without closing anything (the kernel buffers fill). */
  pause() {
    this.paused = true;
    for (const { client, upstream } of this.pairs) {
      client.pause();
      upstream.pause();
    }
  }

  /** Forwards again what was held and what comes. */
  resume() {
    this.paused = false;
    for (const { client, upstream } of this.pairs) {
      client.resume();
      upstream.resume();
    }
  }

  /** How many pairs are open. */
  get open() {
    return this.pairs.size;
  }

  /** Resets every pair and stops listening. */
  close() {
    this.reset();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
