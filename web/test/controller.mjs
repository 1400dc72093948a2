// node test/controller.mjs VECTORS.json: the TypeScript controller's levels and switches for each
// vector, as JSON on stdout (tests/web compares them with the expected ones).
import { readFileSync } from "node:fs";
import { replay } from "../dist/hpv.js";

const { vectors } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = vectors.map((v) => {
  const { levels, switches } = replay(v.p50_ms, v.budget_ms, v.frame_ms, v.settings);
  return { name: v.name, levels, switches: switches.map((s) => [s.frame, s.from, s.to]) };
});
process.stdout.write(JSON.stringify(out));
