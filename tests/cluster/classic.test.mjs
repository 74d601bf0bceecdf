// The classic protocol (createAdapter(pub, sub)): every selected pair of node kinds.
import { clusterScenario } from "./scenario.mjs";
import { selectedPairs, selectedAdapters } from "./lib.mjs";

if (selectedAdapters().includes("classic")) for (const kinds of selectedPairs()) clusterScenario(kinds, "classic");
