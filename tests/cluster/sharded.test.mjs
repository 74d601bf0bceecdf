// The sharded protocol (createShardedAdapter(pub, sub), SPUBLISH/SSUBSCRIBE): every selected pair.
import { clusterScenario } from "./scenario.mjs";
import { selectedPairs, selectedAdapters } from "./lib.mjs";

if (selectedAdapters().includes("sharded")) for (const kinds of selectedPairs()) clusterScenario(kinds, "sharded");
