// node test/table.mjs TABLE.json DEVICE FPS...: the web package's lookup per frame rate, as JSON.
import { readFileSync } from "node:fs";
import { lookup, viewerPlan } from "../dist/hpv.js";

const [path, device, ...rates] = process.argv.slice(2);
const table = JSON.parse(readFileSync(path, "utf8"));
process.stdout.write(JSON.stringify(rates.map(Number).map((fps) => {
  const row = lookup(table, device, fps);
  return { fps, row: row && row.fps, plan: row && row.feasible ? viewerPlan(row) : null };
})));
