// The parts half of a frame, ported from hpv/runtime/parts.py (PartsStep): per frame, each part's
// box is tracked; every part seen this frame gets its keypoints in the crop's frame and the
// upscaled frame's crop under its box as `context`; the part stages' colour and alpha are blended
// into the frame back to front. The stage calls are the caller's (`RunPart`).
import { BoxTracker, boxTransform, CropTransform, modelKeypoints, PartBox, PartTracker } from "./crops";
import partsLayout from "./parts-layout.json";
import { layerOrder, PartLayer, sampleCrop, stitch } from "./stitch";

/** The tracker's rate when the caller does not know the sequence's. */
export const DEFAULT_FPS: number = partsLayout.default_fps;

/** One part stage call of one frame: which part, its stage, where its crop lies, its feeds. */
export interface PartInput {
  part: string; stage: string; transform: CropTransform;
  keypoints: Float32Array;  // [178, 3] in the crop's own 512 frame
  context: Float32Array;    // [3, S, S]: the frame under the box
}
export interface PartOutput { color: Float32Array; alpha: Float32Array; }  // [3, S, S], [1, S, S]
/** Runs `stage` on `count` crops at once: keypoints [count, 178, 3], context [count, 3, S, S] ->
 *  color [count, 3, S, S], alpha [count, 1, S, S]. */
export type RunPart = (stage: string, count: number, keypoints: Float32Array, context: Float32Array)
  => Promise<PartOutput>;

/** The parts of one sequence, frame by frame; `reset()` before the next sequence. */
export class PartsStep {
  readonly partStages: Record<string, string>;
  private tracker: PartTracker;

  /** Crop side per stage (the face's may differ from the hands'). */
  readonly sizes: Record<string, number>;

  /** `size`: the crop side of every stage, or per stage. */
  constructor(partStages: Record<string, string>, size: number | Record<string, number>, fps: number = DEFAULT_FPS) {
    if (!Object.keys(partStages).length) throw new Error("PartsStep needs at least one part -> stage");
    this.partStages = { ...partStages };
    const stages = [...new Set(Object.values(this.partStages))];
    this.sizes = Object.fromEntries(stages.map((st) => [st, typeof size === "number" ? size : size[st]]));
    const missing = stages.filter((st) => !(this.sizes[st] > 0));
    if (missing.length) throw new Error(`PartsStep needs a crop size for each of its stages; none for ${missing.join(", ")}`);
    this.tracker = new PartTracker(fps, Object.keys(this.partStages));
  }

  reset(fps?: number) {
    if (fps !== undefined) this.tracker = new PartTracker(fps, Object.keys(this.partStages));
    this.tracker.reset();
  }

  get trackers(): Map<string, BoxTracker> { return this.tracker.trackers; }

  /** The boxes of the parts to draw this frame, back to front (advances the trackers by one frame:
   *  all a frame with the parts off needs). With the depth `z` [178] a hand behind the body is left out. */
  track(keypoints: Float32Array, z: Float32Array | null = null): PartBox[] {
    const boxes = this.tracker.update(keypoints);
    return layerOrder(keypoints, boxes, z).map((n) => boxes.get(n)!).filter((b) => b.state === "seen");
  }

  /** The frame's part stage calls, back to front (`track`, then each part's feeds from `frame` [3, R, R]). */
  crops(keypoints: Float32Array, frame: Float32Array, resolution: number, z: Float32Array | null = null): PartInput[] {
    return this.track(keypoints, z).map((box) => {
      const t = boxTransform(box, this.sizes[this.partStages[box.part]], resolution);
      return { part: box.part, stage: this.partStages[box.part], transform: t,
               keypoints: modelKeypoints(box, keypoints), context: sampleCrop(frame, t) };
    });
  }

  /** Each call's outputs. The calls of a stage in `batched` (its artifact takes any batch) go in one
   *  run, their feeds stacked: both hands in one call, as hpv does. */
  static async outputs(calls: PartInput[], run: RunPart, batched: ReadonlySet<string> = new Set()): Promise<PartOutput[]> {
    const results: PartOutput[] = new Array(calls.length);
    for (const stage of new Set(calls.map((c) => c.stage))) {
      const mine = calls.flatMap((c, i) => (c.stage === stage ? [i] : []));
      for (const group of batched.has(stage) ? [mine] : mine.map((i) => [i])) {
        const kp = concat(group.map((i) => calls[i].keypoints)), ctx = concat(group.map((i) => calls[i].context));
        const out = await run(stage, group.length, kp, ctx);
        const nc = out.color.length / group.length, na = out.alpha.length / group.length;
        group.forEach((i, j) => {
          results[i] = { color: out.color.subarray(j * nc, (j + 1) * nc), alpha: out.alpha.subarray(j * na, (j + 1) * na) };
        });
      }
    }
    return results;
  }

  /** `frame` with each call's colour and alpha blended over it in the calls' order (in place with `inPlace`). */
  static compose(frame: Float32Array, calls: PartInput[], outputs: PartOutput[], inPlace = false): Float32Array {
    const layers: PartLayer[] = calls.map((c, i) => ({ name: c.part, color: outputs[i].color, alpha: outputs[i].alpha,
                                                       transform: c.transform }));
    return stitch(frame, layers, null, inPlace);
  }
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
