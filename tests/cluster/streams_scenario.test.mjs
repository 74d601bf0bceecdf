// The streams protocol (@socket.io/redis-streams-adapter 0.3.1, connection state recovery on):
// the whole cluster scenario for every selected pair, events carrying their stream offsets.
import { clusterScenario } from "./scenario.mjs";
import { selectedPairs, selectedAdapters } from "./lib.mjs";

if (selectedAdapters().includes("streams")) for (const kinds of selectedPairs()) clusterScenario(kinds, "streams");
