// The web package's parts (crops.ts, stitch.ts, parts.ts) on inputs hpv wrote, for tests/web to
// compare with hpv's own results:
//   node test/parts.mjs vectors STITCH_VECTORS.json      -> JSON: each stitch case's frame, each boxes case's boxes
//   node test/parts.mjs sequence CASE.json OUT.bin       -> JSON per frame (boxes, the calls: part, transform,
//     model keypoints, context); OUT.bin: float32, each frame's stitched [3, R, R]
//   node test/parts.mjs manifest MANIFEST.json            -> JSON: each artifact's role, the generator picked,
//     part -> stage (or the error that says why not)
import { readFileSync, writeFileSync } from "node:fs";
import { BoxTracker, PARTS, PartsStep, partStages, pickArtifact, roleOf, stitch } from "../dist/hpv.js";

const f32 = (a) => Float32Array.from(a.flat(Infinity));
const [mode, path, outPath] = process.argv.slice(2);
const input = JSON.parse(readFileSync(path, "utf8"));

if (mode === "vectors") {
  const stitched = input.stitch.map((c) => Array.from(stitch(f32(c.frame), c.layers.map((l) => ({
    name: l.name, color: f32(l.color), alpha: f32(l.alpha), transform: l.transform })), c.order)));
  const boxes = input.boxes.map((c) => {
    const spec = PARTS.get(c.part), tracker = new BoxTracker(spec, c.fps);
    return c.points.map((pts) => {
      const kp = new Float32Array(178 * 3);
      spec.indices.forEach((i, j) => kp.set(pts[j], 3 * i));
      return tracker.update(kp);
    });
  });
  process.stdout.write(JSON.stringify({ stitch: stitched, boxes }));
} else if (mode === "sequence") {
  // keypoints [T, 178, 3], depth [T, 178] or null, frame [3, R, R], layers {part: [T][colour 3SS + alpha SS]}
  const { fps, resolution: R, sizes, part_stages, frames: T } = input;
  const kp = f32(input.keypoints), depth = input.depth ? f32(input.depth) : null, frame = f32(input.frame);
  const step = new PartsStep(part_stages, sizes, fps);
  const out = new Float32Array(T * 3 * R * R), result = [];
  for (let t = 0; t < T; t++) {
    const k = kp.subarray(t * 534, (t + 1) * 534), z = depth ? depth.subarray(t * 178, (t + 1) * 178) : null;
    const calls = step.crops(k, frame, R, z);
    const outputs = calls.map((c) => {
      const l = f32(input.layers[c.part][t]), S = sizes[c.stage];
      return { color: l.subarray(0, 3 * S * S), alpha: l.subarray(3 * S * S) };
    });
    out.set(PartsStep.compose(frame, calls, outputs), t * 3 * R * R);
    result.push(calls.map((c) => ({ part: c.part, stage: c.stage, transform: c.transform,
                                    keypoints: Array.from(c.keypoints), context: Array.from(c.context) })));
  }
  writeFileSync(outPath, Buffer.from(out.buffer));
  process.stdout.write(JSON.stringify(result));
} else if (mode === "manifest") {
  let parts;
  try { parts = partStages(input); } catch (e) { parts = { error: e.message }; }
  process.stdout.write(JSON.stringify({ roles: Object.fromEntries(input.artifacts.map((a) => [a.path, roleOf(a)])),
                                        generator: pickArtifact(input, "generator", "fp32").stage, parts }));
} else {
  throw new Error(`mode ${mode}: write vectors, sequence or manifest`);
}
