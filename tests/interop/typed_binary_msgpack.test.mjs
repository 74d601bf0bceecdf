// @example typed_binary
// @env PARSER=msgpack
//
// typed_binary.test.mjs again, the server started with PARSER=msgpack and every client with
// `socket.io-msgpack-parser` 3.0.2 (lib.mjs reads PARSER).

import "./typed_binary.test.mjs";
