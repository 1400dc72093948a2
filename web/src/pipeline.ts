// A compiled build run frame by frame in onnxruntime-web, as hpv.runtime.pipeline.CompiledPipeline
// runs it in Python: generator (recurrent state carried) -> k refiner steps -> upscaler -> part
// stages (hands, face) stitched in (parts.ts). `ort` is the onnxruntime-web module the app imports
// (`import * as ort from "onnxruntime-web/wasm"`).
import { ArtifactRecord, Manifest, ManifestError, partStages, pickArtifact, pickStage, TensorRecord } from "./manifest";
import { DEFAULT_FPS, PartOutput, PartsStep } from "./parts";

type Ort = any;  // the onnxruntime-web module: typed loosely so any build of it (wasm, webgpu) fits
type Tensor = any;

export interface PipelineOptions {
  precision?: string;            // default: fp32 when the build has it
  executionProviders?: string[]; // default ["wasm"]
  spinning?: boolean;            // wasm threads spin between a run's ops (default SPINNING)
}

/** Whether the sessions' wasm threads spin between a run's ops (they stop when it returns). */
export const SPINNING = false;

/** ms of a frame's phases; `partRuns` is the part stages' runs inside `parts` (the rest of it
 *  is cropping and stitching). */
export interface FrameTimes { generator: number; refiner: number; upscaler: number; parts: number; partRuns: number;
                              total: number; }

export interface FrameOptions {
  parts?: boolean;                // draw the part stages (default true); their boxes are tracked either way
  depth?: Float32Array | null;    // the keypoints' z [178] (Keypoints.depth): a hand behind the body is hidden
}

function concrete(t: TensorRecord, batch: number): number[] {
  return t.shape.map((d) => (typeof d === "number" ? d : batch));
}

function rescale(x: Float32Array, src: [number, number] | null, dst: [number, number] | null): Float32Array {
  if (!src || !dst || (src[0] === dst[0] && src[1] === dst[1])) return x;
  const a = (dst[1] - dst[0]) / (src[1] - src[0]), b = dst[0] - src[0] * a;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * a + b;  // 3 x 128 x 128 values: not the per-pixel key
  return out;
}

class Stage {
  constructor(readonly record: ArtifactRecord, readonly session: any) {}
  input(name: string) { return this.record.inputs.find((t) => t.name === name); }
  output(name: string) { return this.record.outputs.find((t) => t.name === name); }
  byRole(role: string) { return this.record.inputs.find((t) => t.role === role); }
}

export class WebPipeline {
  private state: Record<string, Tensor> = {};
  private previous: Tensor | null = null;
  readonly maxSteps: number;
  lastTimes: FrameTimes | null = null;
  private partRunMs = 0;

  private parts: PartsStep | null = null;
  private readonly partSizes: Record<string, number> | null;
  private readonly batchedParts: Set<string>;

  private constructor(private ort: Ort, readonly manifest: Manifest, readonly precision: string,
                      private gen: Stage, private ref: Stage | null, private up: Stage,
                      private partRunners: Map<string, Stage>, readonly partStages: Record<string, string>) {
    // The build's K; a build written before manifests recorded it: the refiner's own step count.
    const built = ref ? Number(ref.record.params?.max_steps ?? 1) : 0;
    this.maxSteps = manifest.max_steps ?? built;
    if (this.maxSteps > built) {
      throw new ManifestError(`the manifest says k <= ${this.maxSteps}, but its refiner was built for ${built} steps: `
        + "rebuild the build with hpv-compile");
    }
    const sizes: Record<string, number> = {};
    for (const [stage, r] of partRunners) {
      for (const [kind, name] of [["input", "keypoints"], ["input", "context"], ["output", "color"], ["output", "alpha"]]) {
        if (!(kind === "input" ? r.input(name) : r.output(name))) {
          throw new ManifestError(`the ${stage} part stage needs ${kind} ${name}: rebuild the build with hpv-compile`);
        }
      }
      const shape = r.input("context")!.shape;
      sizes[stage] = shape[shape.length - 1] as number;  // each stage's crop side: the face's may differ
    }
    this.partSizes = partRunners.size ? sizes : null;
    // Those whose artifact takes any batch draw all their crops of a frame in one call (both hands).
    this.batchedParts = new Set([...partRunners].filter(([, r]) => r.record.batch === "dynamic").map(([s]) => s));
    this.reset();
  }

  static async create(ort: Ort, buildUrl: string, manifest: Manifest, options: PipelineOptions = {}) {
    const base = buildUrl.endsWith("/") ? buildUrl : buildUrl + "/";
    const have = new Set(manifest.artifacts.map((a) => a.precision));
    const precision = options.precision ?? (have.has("fp32") ? "fp32" : [...have][0]);
    const eps = options.executionProviders ?? ["wasm"];
    const onGpu = eps[0] === "webgpu";
    const load = async (rec: ArtifactRecord | null) => {
      if (!rec) return null;
      const bytes = new Uint8Array(await (await fetch(new URL(rec.path, base))).arrayBuffer());
      // On WebGPU the recurrent state and the keypoint fields stay on the device between calls and
      // stages (no readback); images come back to the CPU for the range change and the canvas.
      const keep = onGpu ? Object.fromEntries(rec.outputs.filter((t) => t.role === "state" || t.role === "fields")
        .map((t) => [t.name, "gpu-buffer"])) : {};
      // Idle wasm threads sleep instead of spinning (spinning: only within a run, stopped when it
      // returns), so with 2 threads on 2 cores the stage's helper thread does not starve the
      // worker and the page.
      const spin = options.spinning ?? SPINNING;
      const opts = { executionProviders: eps, graphOptimizationLevel: "all",
                     extra: { session: { intra_op: { allow_spinning: spin ? "1" : "0" },
                                         ...(spin ? { force_spinning_stop: "1" } : {}) } },
                     ...(Object.keys(keep).length ? { preferredOutputLocation: keep } : {}) };
      return new Stage(rec, await ort.InferenceSession.create(bytes, opts));
    };
    const gen = await load(pickArtifact(manifest, "generator", precision));
    const ref = await load(pickArtifact(manifest, "refiner", precision));
    const up = await load(pickArtifact(manifest, "upscaler", precision));
    // Part stages run at batch 1 whatever the build's batch (a frame has 0..3 parts).
    const parts = partStages(manifest);
    const partRunners = new Map<string, Stage>();
    for (const stage of new Set(Object.values(parts))) partRunners.set(stage, (await load(pickStage(manifest, stage, precision, 1)))!);
    return new WebPipeline(ort, manifest, precision, gen!, ref, up!, partRunners, parts);
  }

  /** Whether the build draws parts (hands, face) apart and stitches them in. */
  get hasParts(): boolean { return this.partRunners.size > 0; }

  /** Output size (pixels) of the upscaler. */
  get resolution(): number { const s = this.up.output("upscaled")!.shape; return s[s.length - 1] as number; }
  get outputRange(): [number, number] { return this.up.output("upscaled")!.value_range ?? [0, 1]; }

  /** Forget the recurrent state: the next frame starts a new sequence, whose part boxes are
   *  smoothed at `fps` (default DEFAULT_FPS, as hpv). */
  reset(fps?: number) {
    this.state = {};
    for (const s of this.gen.record.state) {
      const t = this.gen.input(s.input)!;
      const dims = concrete(t, 1);
      this.state[s.input] = new this.ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    }
    this.previous = null;
    this.parts = this.partSizes === null ? null : new PartsStep(this.partStages, this.partSizes, fps ?? DEFAULT_FPS);
  }

  /** One frame from 178 x 3 keypoints; returns the upscaler's [3, H, W] in `outputRange`, with the
   *  part stages (if the build has them and `parts`) stitched in. The part boxes are tracked either
   *  way, so the parts can be switched on and off between frames without a jump. */
  async frame(keypoints: Float32Array, k: number, { parts = true, depth = null }: FrameOptions = {}): Promise<Float32Array> {
    if (!(k >= 0 && k <= this.maxSteps)) throw new Error(`k = ${k}: this pipeline refines 0..${this.maxSteps} steps`);
    const T = this.ort.Tensor;
    const t0 = performance.now();
    const kp = this.gen.byRole("keypoints")!;
    const out = await this.gen.session.run({ [kp.name]: new T("float32", keypoints, concrete(kp, 1)), ...this.state });
    const state: Record<string, Tensor> = {};
    for (const s of this.gen.record.state) state[s.input] = out[s.output];
    for (const old of Object.values(this.state)) if (!Object.values(state).includes(old)) old.dispose?.();
    this.state = state;
    let est: Tensor = out["image"];
    const fieldsName = this.gen.record.outputs.find((o) => o.role === "fields")?.name;
    const fields = fieldsName ? out[fieldsName] : null;
    const t1 = performance.now();
    if (this.ref && k) {
      const pose = this.poseFeed(this.ref, fields, keypoints);
      const prev = this.previous ?? est;
      for (let step = 0; step < k; step++) {
        const r = await this.ref.session.run({ ...pose, estimate: est, previous: prev,
                                               step: new T("float32", new Float32Array([step]), [1, 1]) });
        est = r["refined"];
      }
    }
    this.previous = est;
    const t2 = performance.now();
    const upIn = rescale(await est.getData(), this.gen.output("image")!.value_range, this.up.input("image")!.value_range);
    const u = await this.up.session.run({ image: new T("float32", upIn, est.dims),
                                          ...this.poseFeed(this.up, fields, keypoints) });
    const img = (await u["upscaled"].getData()) as Float32Array;
    if (fields && fields.location === "gpu-buffer") fields.dispose();
    const t3 = performance.now();
    this.partRunMs = 0;
    if (this.parts) {  // stitched into the upscaler's output, which only we hold
      if (!parts) {
        this.parts.track(keypoints, depth);
      } else {
        const calls = this.parts.crops(keypoints, img, this.resolution, depth);
        const outs = await PartsStep.outputs(calls, (stage, n, kp, ctx) => this.runPart(stage, n, kp, ctx), this.batchedParts);
        PartsStep.compose(img, calls, outs, true);
      }
    }
    const t4 = performance.now();
    this.lastTimes = { generator: t1 - t0, refiner: t2 - t1, upscaler: t3 - t2, parts: t4 - t3, partRuns: this.partRunMs,
                       total: t4 - t0 };
    return img;
  }

  private async runPart(stage: string, count: number, keypoints: Float32Array, context: Float32Array): Promise<PartOutput> {
    const T = this.ort.Tensor, r = this.partRunners.get(stage)!;
    const kp = r.input("keypoints")!, ctx = r.input("context")!;
    const t0 = performance.now();
    const out = await r.session.run({ [kp.name]: new T("float32", keypoints, concrete(kp, count)),
                                      [ctx.name]: new T("float32", context, concrete(ctx, count)) });
    const got = { color: (await out["color"].getData()) as Float32Array, alpha: (await out["alpha"].getData()) as Float32Array };
    this.partRunMs += performance.now() - t0;
    return got;
  }

  private poseFeed(stage: Stage, fields: Tensor | null, keypoints: Float32Array): Record<string, Tensor> {
    const kp = stage.byRole("keypoints");
    if (kp) return { [kp.name]: new this.ort.Tensor("float32", keypoints, concrete(kp, 1)) };
    const f = stage.byRole("fields");
    return f && fields ? { [f.name]: fields } : {};
  }

  async release() {
    for (const s of [this.gen, this.ref, this.up, ...this.partRunners.values()]) if (s) await s.session.release();
  }
}
