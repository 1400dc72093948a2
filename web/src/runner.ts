// Where the pipeline runs: in a Web Worker (the UI thread stays free), or on the main thread
// where a worker cannot (no Worker, or the backend fails to start in one).
import { loadManifest, Manifest } from "./manifest";
import { FrameOptions, FrameTimes, WebPipeline } from "./pipeline";

export interface RunnerOptions {
  buildUrl: string;        // folder holding manifest.json and the artifacts
  ortUrl: string;          // onnxruntime-web ES module (e.g. .../dist/ort.wasm.min.mjs)
  wasmPaths?: string;      // where its .wasm files lie (default: beside ortUrl)
  precision?: string;
  executionProviders?: string[];
  threads?: number;        // wasm threads (default `defaultThreads()`)
  spinning?: boolean;      // wasm threads spin within a run (default pipeline.SPINNING)
  worker?: boolean | string;  // false: main thread; a URL: the worker script (default: dist/worker.js beside this module)
}

export interface Ready { manifest: Manifest; precision: string; resolution: number; range: [number, number];
                         maxSteps: number; hasParts: boolean; where: "worker" | "main"; ort: string; }
export interface Frame { image: Float32Array; times: FrameTimes; }

export interface Runner {
  ready: Ready;
  frame(keypoints: Float32Array, k: number, options?: FrameOptions): Promise<Frame>;
  reset(fps?: number): Promise<void>;  // a new sequence: state cleared, part boxes tracked afresh at `fps`
  close(): Promise<void>;
}

/** wasm threads when the app does not say: one per core up to 4 where the page is cross-origin
 * isolated (threads need it), else 1. Measured on 2 shared cores (fp32, k = 1, with the parts):
 * 2 threads 55 ms a frame, 1 thread 99 ms (bench/web_speed.py). */
export function defaultThreads(): number {
  const g = globalThis as any;
  return g.crossOriginIsolated ? Math.max(1, Math.min(4, g.navigator?.hardwareConcurrency ?? 1)) : 1;
}

export async function setupOrt(ortUrl: string, wasmPaths?: string, threads = 1) {
  const ort = await import(/* @vite-ignore */ ortUrl);
  ort.env.wasm.wasmPaths = wasmPaths ?? new URL(".", ortUrl).href;
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  return ort;
}

/** URLs made absolute against the page (a worker and fetch need absolute ones). */
function absolute(o: RunnerOptions): RunnerOptions {
  const base = (globalThis as any).location?.href;
  if (!base) return o;
  const abs = (u?: string) => (u === undefined ? u : new URL(u, base).href);
  return { ...o, buildUrl: abs(o.buildUrl)!, ortUrl: abs(o.ortUrl)!, wasmPaths: abs(o.wasmPaths),
           worker: typeof o.worker === "string" ? abs(o.worker) : o.worker };
}

export async function startMain(o: RunnerOptions): Promise<Runner> {
  o = absolute(o);
  const ort = await setupOrt(o.ortUrl, o.wasmPaths, o.threads ?? defaultThreads());
  const manifest = await loadManifest(o.buildUrl);
  const p = await WebPipeline.create(ort, o.buildUrl, manifest, { precision: o.precision, executionProviders: o.executionProviders,
                                                                          spinning: o.spinning });
  return {
    ready: { manifest, precision: p.precision, resolution: p.resolution, range: p.outputRange, maxSteps: p.maxSteps,
             hasParts: p.hasParts, where: "main", ort: ort.env.versions?.web ?? "?" },
    frame: async (kp, k, options) => ({ image: await p.frame(kp, k, options), times: p.lastTimes! }),
    reset: async (fps) => p.reset(fps),
    close: () => p.release(),
  };
}

function startWorker(o: RunnerOptions, url: string): Promise<Runner> {
  return new Promise((resolve, reject) => {
    const w = new Worker(url, { type: "module" });
    const pending = new Map<number, { ok: (v: any) => void; fail: (e: any) => void }>();
    let ids = 0;
    const call = (msg: any, transfer: Transferable[] = []) => new Promise<any>((ok, fail) => {
      const id = ++ids;
      pending.set(id, { ok, fail });
      w.postMessage({ ...msg, id }, transfer);
    });
    w.onerror = (e) => reject(new Error(`worker failed: ${e.message}`));
    w.onmessage = (e) => {
      const { id, error, value } = e.data;
      const p = pending.get(id);
      if (!p) return;
      pending.delete(id);
      error ? p.fail(new Error(error)) : p.ok(value);
    };
    const { worker: _w, ...plain } = o;
    call({ type: "init", options: plain }).then((ready: Ready) => resolve({
      ready: { ...ready, where: "worker" },
      frame: async (kp, k, options = {}) => {
        const copy = kp.slice(), depth = options.depth ? options.depth.slice() : null;
        return call({ type: "frame", keypoints: copy, k, parts: options.parts ?? true, depth },
                    depth ? [copy.buffer, depth.buffer] : [copy.buffer]);
      },
      reset: (fps) => call({ type: "reset", fps }),
      close: async () => { await call({ type: "close" }); w.terminate(); },
    }), (e) => { w.terminate(); reject(e); });
  });
}

/** A worker runner, or the main thread where a worker cannot run the backend. */
export async function startRunner(o: RunnerOptions): Promise<Runner> {
  o = absolute(o);
  if (o.worker !== false && typeof Worker !== "undefined") {
    const url = typeof o.worker === "string" ? o.worker : new URL("./worker.js", import.meta.url).href;
    try {
      return await startWorker(o, url);
    } catch (e) {
      console.warn(`hpv: the worker could not start the pipeline (${(e as Error).message}); running on the main thread`);
    }
  }
  return startMain(o);
}
