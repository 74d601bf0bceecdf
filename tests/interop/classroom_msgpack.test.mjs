// @example classroom
// @env PARSER=msgpack
//
// classroom.test.mjs again, the server started with PARSER=msgpack and every client with
// `socket.io-msgpack-parser` 3.0.2 (lib.mjs reads PARSER).

import "./classroom.test.mjs";
