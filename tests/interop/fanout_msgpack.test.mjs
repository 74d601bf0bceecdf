// @example fanout
// @env PARSER=msgpack
//
// fanout.test.mjs again, the server started with PARSER=msgpack and every client with
// `socket.io-msgpack-parser` 3.0.2 (lib.mjs reads PARSER): each broadcast is one msgpack
// message, encoded once, written to every other client.

import "./fanout.test.mjs";
