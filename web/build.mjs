// Bundles src/ into dist/ (ES modules): hpv.js (the package), worker.js (its Web Worker).
// onnxruntime-web is not bundled: the app passes its URL (ortUrl), so one copy of ort and its
// .wasm files serves the page and the worker.
import * as esbuild from "esbuild";

await esbuild.build({
  entryPoints: { hpv: "src/index.ts", worker: "src/worker.ts" },
  bundle: true, format: "esm", target: "es2022", outdir: "dist", sourcemap: true,
  logLevel: "warning",
});
