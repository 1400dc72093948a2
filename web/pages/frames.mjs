// Runs a .pose file through the web runtime (dist/hpv.js) and POSTs the frames back to hpv:
// tests compare them with the Python runtime's, bench/web_speed.py times whole frames.
import { readPose, toKeypoints, startRunner, ChromaRenderer } from "/web/dist/hpv.js";

const ORT = "/web/node_modules/onnxruntime-web/dist/";
let runner = null;
let keypoints = null;

// poseUrl: a .pose file; or keypointsUrl: raw float32 [T, 178, 3] keypoints (at `fps`).
async function open({ buildUrl, poseUrl = null, keypointsUrl = null, fps = 25, precision = "fp32", worker = true,
                      threads = 1, ep = "wasm", spinning = undefined }) {
  if (runner) await runner.close();
  const build = ep === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs";
  runner = await startRunner({ buildUrl, ortUrl: ORT + build, wasmPaths: ORT, precision, threads, spinning,
                               executionProviders: [ep], worker: worker ? "/web/dist/worker.js" : false });
  if (poseUrl) {
    keypoints = toKeypoints(readPose(await (await fetch(poseUrl)).arrayBuffer()));
  } else {
    const data = new Float32Array(await (await fetch(keypointsUrl)).arrayBuffer());
    keypoints = { frames: data.length / (178 * 3), fps, data };
  }
  const { manifest, ...ready } = runner.ready;
  return { ...ready, frames: keypoints.frames, fps: keypoints.fps };
}

// One frame's keypoints, and their depth where the .pose file has it (hands behind the body hidden).
function at(t) {
  const N = keypoints.data.length / keypoints.frames, D = N / 3;
  return { kp: keypoints.data.slice(t * N, (t + 1) * N), depth: keypoints.depth ? keypoints.depth.slice(t * D, (t + 1) * D) : null };
}

// Frames [0, count) at k (part stages drawn or not) from a fresh state; POSTs [count, 3, H, W]
// float32 to `slot` when given. Times: each frame's total ms, or with `phases` its FrameTimes.
async function frames({ count, k, parts = true, slot = null, draw = false, phases = false }) {
  await runner.reset(keypoints.fps);
  const n = Math.min(count, keypoints.frames);
  const times = [];
  const images = [];
  const renderer = draw ? new ChromaRenderer(document.getElementById("view")) : null;
  for (let t = 0; t < n; t++) {
    const { kp, depth } = at(t);
    const f = await runner.frame(kp, k, { parts, depth });
    times.push(phases ? f.times : f.times.total);
    if (slot) images.push(f.image);
    if (renderer) renderer.draw(f.image, runner.ready.resolution, runner.ready.range);
  }
  if (slot) {
    const out = new Float32Array(images.reduce((s, p) => s + p.length, 0));
    let offset = 0;
    for (const p of images) { out.set(p, offset); offset += p.length; }
    const r = await fetch(slot, { method: "POST", body: out.buffer });
    if (!r.ok) throw new Error(`posting frames failed: ${r.status}`);
  }
  return { frames: n, times };
}

// Whole-frame timings: `runs` frames at k (part stages drawn or not) cycling through the sequence,
// state carried.
async function time({ k, runs, warmup = 3, parts = true }) {
  const times = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t = i % keypoints.frames;
    if (t === 0) await runner.reset(keypoints.fps);
    const { kp, depth } = at(t);
    const t0 = performance.now();
    await runner.frame(kp, k, { parts, depth });
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return times;
}

window.hpvFrames = { open, frames, time };
window.hpvReady = true;
