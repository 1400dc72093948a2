// hpv's onnxruntime-web harness: Python hands a call over as one binary blob (inputs), the page
// runs it on the chosen execution provider and POSTs the outputs back in the same layout.
// Blob layout: uint32 header length (little endian), JSON header, zero padding to 4 bytes,
// then float32 data; header = {tensors: [{name, dims, offset, length}]} (offset, length in floats).
const ORT_DIST = "/web/node_modules/onnxruntime-web/dist/";
const BUILDS = { wasm: "ort.wasm.min.mjs", webgpu: "ort.webgpu.min.mjs", jsep: "ort.min.mjs" };
let ort = null;
let options = null;
const sessions = new Map();

function decode(buffer) {
  const view = new DataView(buffer);
  const n = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  const start = 4 + n + ((4 - ((4 + n) % 4)) % 4);
  const tensors = {};
  for (const t of header.tensors) {
    tensors[t.name] = { dims: t.dims, data: new Float32Array(buffer, start + 4 * t.offset, t.length) };
  }
  return { header, tensors };
}

function encode(tensors, extra = {}) {
  const entries = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    entries.push({ name, dims: Array.from(t.dims), offset, length: t.data.length });
    offset += t.data.length;
  }
  const head = new TextEncoder().encode(JSON.stringify({ ...extra, tensors: entries }));
  const pad = (4 - ((4 + head.length) % 4)) % 4;
  const out = new ArrayBuffer(4 + head.length + pad + 4 * offset);
  new DataView(out).setUint32(0, head.length, true);
  new Uint8Array(out, 4, head.length).set(head);
  const data = new Float32Array(out, 4 + head.length + pad, offset);
  for (const e of entries) data.set(tensors[e.name].data, e.offset);
  return out;
}

async function init({ ep = "wasm", threads = 1, build = null } = {}) {
  if (ort) return info();
  ort = await import(ORT_DIST + (build ? BUILDS[build] : BUILDS[ep]));
  ort.env.wasm.wasmPaths = ORT_DIST;
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  options = { executionProviders: [ep === "jsep" ? "webgpu" : ep], graphOptimizationLevel: "all" };
  return info();
}

async function info() {
  const out = { ort: ort?.env?.versions?.web ?? null, ep: options?.executionProviders?.[0] ?? null,
                threads: ort?.env?.wasm?.numThreads ?? null, crossOriginIsolated: self.crossOriginIsolated,
                userAgent: navigator.userAgent, adapter: null };
  if (options?.executionProviders?.[0] === "webgpu" && navigator.gpu) {
    const a = await navigator.gpu.requestAdapter();
    if (a) {
      const i = a.info || {};
      out.adapter = { vendor: i.vendor, architecture: i.architecture, description: i.description,
                      isFallbackAdapter: Boolean(a.isFallbackAdapter ?? i.isFallbackAdapter),
                      shaderF16: a.features.has("shader-f16") };
    }
  }
  return out;
}

async function session(url) {
  if (!sessions.has(url)) {
    for (const [u, s] of sessions) { await s.release(); sessions.delete(u); }  // one model at a time
    const t0 = performance.now();
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const s = await ort.InferenceSession.create(bytes, options);
    s.hpvLoadMs = performance.now() - t0;
    sessions.set(url, s);
  }
  return sessions.get(url);
}

function feeds(s, tensors) {
  const out = {};
  for (const name of s.inputNames) {
    const t = tensors[name];
    if (!t) throw new Error(`the call lacks input ${name}`);
    out[name] = new ort.Tensor("float32", t.data, t.dims);
  }
  return out;
}

// Run one call: inputs from `blobUrl`, outputs POSTed to `slot`; returns the run's ms.
async function run(modelUrl, blobUrl, slot) {
  const s = await session(modelUrl);
  const { tensors } = decode(await (await fetch(blobUrl)).arrayBuffer());
  const t0 = performance.now();
  const res = await s.run(feeds(s, tensors));
  const ms = performance.now() - t0;
  const outs = {};
  for (const name of s.outputNames) outs[name] = { dims: res[name].dims, data: await res[name].getData() };
  const r = await fetch(slot, { method: "POST", body: encode(outs, { ms }) });
  if (!r.ok) throw new Error(`posting outputs failed: ${r.status}`);
  return ms;
}

// Time one artifact: `warmup` untimed runs, then `runs` timed ones (ms each), on the call's inputs.
async function time(modelUrl, blobUrl, runs, warmup) {
  const fresh = !sessions.has(modelUrl);
  const s = await session(modelUrl);
  const { tensors } = decode(await (await fetch(blobUrl)).arrayBuffer());
  const f = feeds(s, tensors);
  const t0 = performance.now();
  await s.run(f);
  const first = performance.now() - t0;
  for (let i = 0; i < warmup; i++) await s.run(f);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await s.run(f);
    times.push(performance.now() - t);
  }
  return { load_ms: fresh ? s.hpvLoadMs : null, first_ms: first, times };
}

async function release() {
  for (const [u, s] of sessions) { await s.release(); sessions.delete(u); }
}

window.hpvOrt = { init, info, run, time, release, decode, encode };
window.hpvReady = true;
