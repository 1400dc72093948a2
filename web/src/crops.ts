// The parts' crop boxes and their transforms, ported from hpv/parts/crops.py (its docstrings and
// docs/stitching.md spell out the rule): per part, the box of one frame's keypoints, smoothed over
// the sequence by a one-euro filter with a dead-band, held through short dropouts; a box's crop maps
// to the output frame by a scale and an offset, mirrored for the left hand. The constants come from
// parts-layout.json (generated from hpv), so the two cannot drift; tests/web checks the port on
// tests/parts/stitch_vectors.json and against hpv on real poses.
import partsLayout from "./parts-layout.json";

export const FRAME_SIZE: number = partsLayout.frame_size;
export const CROP_SIZE: number = partsLayout.crop_size;
const { box_pad: BOX_PAD, box_margin: BOX_MARGIN, crop_slack: CROP_SLACK, min_seen: MIN_SEEN } = partsLayout;
export const MIRROR_ORDER: readonly number[] = partsLayout.mirror_order;

export interface PartSpec { name: string; indices: readonly number[]; mirror: boolean; min_side: number; }
export const PARTS: ReadonlyMap<string, PartSpec> = new Map(partsLayout.parts.map((p) => [p.name, p]));
export const HANDS = ["left_hand", "right_hand"] as const;

export interface Smoothing {
  min_cutoff_hz: number; beta: number; d_cutoff_hz: number; deadband: number; side_deadband: number; hold_frames: number;
}
export const DEFAULT_SMOOTHING: Smoothing = partsLayout.smoothing;

/** seen: the part's keypoints are in this frame; held: missing, the last seen box kept (at most
 *  hold_frames frames); absent: missing for longer or never seen, not drawn. */
export type BoxState = "seen" | "held" | "absent";

/** Crop pixel (u, v) -> frame pixel (x, y) at `resolution`: x = sx u + ox, y = sy v + oy
 *  (pixel i covers [i, i + 1)); sx = -sy when mirrored. */
export interface CropTransform { sx: number; sy: number; ox: number; oy: number; size: number; resolution: number; }

/** (x0, y0, x1, y1) of the crop's square in the frame, x0 < x1. */
export function frameExtent(t: CropTransform): [number, number, number, number] {
  const xa = t.ox, xb = t.ox + t.sx * t.size;
  return [Math.min(xa, xb), t.oy, Math.max(xa, xb), t.oy + t.sy * t.size];
}

/** One part's box in one frame: centre and side in the 512 frame (inside it), its state, mirrored or not. */
export interface PartBox { part: string; cx: number; cy: number; side: number; state: BoxState; mirror: boolean; }

/** The crop -> frame transform of a drawn box for a `size` crop in a `resolution` frame. */
export function boxTransform(b: PartBox, size: number = CROP_SIZE, resolution: number = FRAME_SIZE): CropTransform {
  if (b.state === "absent") throw new Error(`${b.part} is absent in this frame: it has no crop transform`);
  const r = resolution / FRAME_SIZE;
  const k = b.side * r / size;
  const x0 = (b.cx - b.side / 2) * r, y0 = (b.cy - b.side / 2) * r;
  return b.mirror ? { sx: -k, sy: k, ox: x0 + b.side * r, oy: y0, size, resolution }
    : { sx: k, sy: k, ox: x0, oy: y0, size, resolution };
}

/** A part generator's keypoint input [178, 3] (hpv's PartBox.model_keypoints): the frame's
 *  keypoints in the crop's own 512 frame, confidence kept, unseen points at 0; a mirrored crop also
 *  swaps left and right (MIRROR_ORDER), so the left hand lies in the right hand's slots. */
export function modelKeypoints(b: PartBox, keypoints: Float32Array): Float32Array {
  const t = boxTransform(b, CROP_SIZE, FRAME_SIZE);
  const n = keypoints.length / 3;
  const crop = new Float32Array(3 * n);  // crop pixels at CROP_SIZE, rounded to float32 as hpv does
  for (let i = 0; i < n; i++) {
    const c = keypoints[3 * i + 2];
    if (c > 0) {
      crop[3 * i] = (keypoints[3 * i] - t.ox) / t.sx;
      crop[3 * i + 1] = (keypoints[3 * i + 1] - t.oy) / t.sy;
    }
    crop[3 * i + 2] = c;
  }
  const scale = FRAME_SIZE / CROP_SIZE;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const from = b.mirror ? MIRROR_ORDER[i] : i;
    out[3 * i] = crop[3 * from] * scale;
    out[3 * i + 1] = crop[3 * from + 1] * scale;
    out[3 * i + 2] = crop[3 * from + 2];
  }
  return out;
}

type Box3 = [number, number, number];  // cx, cy, side

/** The looks metrics' box of a part (middle of the seen points' extent; BOX_PAD x the larger
 *  extent + BOX_MARGIN); null with fewer than MIN_SEEN seen points. */
export function metricBox(keypoints: Float32Array, spec: PartSpec): Box3 | null {
  let seen = 0, x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const i of spec.indices) {
    if (!(keypoints[3 * i + 2] > 0)) continue;
    const x = keypoints[3 * i], y = keypoints[3 * i + 1];
    seen++;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  if (seen < MIN_SEEN) return null;
  return [(x0 + x1) / 2, (y0 + y1) / 2, BOX_PAD * Math.max(x1 - x0, y1 - y0) + BOX_MARGIN];
}

/** The crop box before smoothing: the metric box grown by CROP_SLACK, at least min_side; null
 *  when the part is missing or its box lies wholly outside the frame. */
export function rawBox(keypoints: Float32Array, spec: PartSpec): Box3 | null {
  const m = metricBox(keypoints, spec);
  if (!m) return null;
  const [cx, cy] = m, side = Math.max(spec.min_side, CROP_SLACK * m[2]);
  const h = side / 2;
  if (cx + h <= 0 || cy + h <= 0 || cx - h >= FRAME_SIZE || cy - h >= FRAME_SIZE) return null;
  return [cx, cy, side];
}

const clip = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
const alpha = (cutoffHz: number, dt: number) => 1 / (1 + 1 / (2 * Math.PI * cutoffHz * dt));
const norm2 = (x: number, y: number) => Math.sqrt(x * x + y * y);

/** One part's box over a sequence, frame by frame; deterministic (a function of the keypoints). */
export class BoxTracker {
  private c: [number, number] | null = null;
  private dc: [number, number] = [0, 0];
  private s = 0;
  private ds = 0;
  private missing = 0;
  readonly dt: number;

  constructor(readonly spec: PartSpec, fps: number, readonly smoothing: Smoothing = DEFAULT_SMOOTHING) {
    if (!(Number.isFinite(fps) && fps > 0)) throw new Error(`fps must be positive; got ${fps}`);
    this.dt = 1 / fps;
  }

  reset() { this.c = null; this.dc = [0, 0]; this.s = 0; this.ds = 0; this.missing = 0; }

  /** The box for the next frame's keypoints [178, 3]. */
  update(keypoints: Float32Array): PartBox {
    const raw = rawBox(keypoints, this.spec);
    if (!raw) {
      this.missing += 1;
      if (this.c === null || this.missing > this.smoothing.hold_frames) {
        this.reset();
        return { part: this.spec.name, cx: 0, cy: 0, side: 0, state: "absent", mirror: this.spec.mirror };
      }
      return this.box("held");
    }
    const need = metricBox(keypoints, this.spec)!;
    this.missing = 0;
    if (this.c === null) {
      this.c = [raw[0], raw[1]]; this.dc = [0, 0]; this.s = raw[2]; this.ds = 0;
      return this.box("seen");
    }
    const st = this.smoothing, dt = this.dt, side = this.s, c = this.c;
    // centre: soft dead-band, then the one-euro step with a cutoff from its speed (the same
    // floating-point steps as hpv's, so both round alike)
    let ex = raw[0] - c[0], ey = raw[1] - c[1];
    const n = norm2(ex, ey);
    if (n > 0) { const k = Math.max(0, 1 - st.deadband * side / n); ex *= k; ey *= k; }
    const xx = c[0] + ex, xy = c[1] + ey;
    const ad = alpha(st.d_cutoff_hz, dt);
    this.dc = [this.dc[0] + ad * ((xx - c[0]) / dt - this.dc[0]), this.dc[1] + ad * ((xy - c[1]) / dt - this.dc[1])];
    let a = alpha(st.min_cutoff_hz + st.beta * norm2(this.dc[0], this.dc[1]) / side, dt);
    let cx = c[0] + a * (xx - c[0]), cy = c[1] + a * (xy - c[1]);
    // side: the same, on its own
    let es = raw[2] - this.s;
    if (es !== 0) es *= Math.max(0, 1 - st.side_deadband * side / Math.abs(es));
    const xs = this.s + es;
    this.ds = this.ds + ad * ((xs - this.s) / dt - this.ds);
    a = alpha(st.min_cutoff_hz + st.beta * Math.abs(this.ds) / side, dt);
    let s = this.s + a * (xs - this.s);
    // a jump faster than the filter follows: move and grow just enough to hold the metric box
    s = Math.max(s, need[2]);
    const slack = (s - need[2]) / 2;
    cx = clip(cx, need[0] - slack, need[0] + slack);
    cy = clip(cy, need[1] - slack, need[1] + slack);
    this.c = [cx, cy];
    this.s = s;
    return this.box("seen");
  }

  private box(state: BoxState): PartBox {
    const side = Math.min(this.s, FRAME_SIZE), h = side / 2;
    return { part: this.spec.name, cx: clip(this.c![0], h, FRAME_SIZE - h), cy: clip(this.c![1], h, FRAME_SIZE - h),
             side, state, mirror: this.spec.mirror };
  }
}

/** The parts' trackers together: update(keypoints) -> part name -> box. */
export class PartTracker {
  readonly trackers: Map<string, BoxTracker>;

  constructor(fps: number, parts: readonly string[] = [...PARTS.keys()], smoothing: Smoothing = DEFAULT_SMOOTHING) {
    this.trackers = new Map(parts.map((name) => {
      const spec = PARTS.get(name);
      if (!spec) throw new Error(`unknown part ${JSON.stringify(name)}; the parts are ${[...PARTS.keys()].join(", ")}`);
      return [name, new BoxTracker(spec, fps, smoothing)];
    }));
  }

  reset() { for (const t of this.trackers.values()) t.reset(); }

  update(keypoints: Float32Array): Map<string, PartBox> {
    return new Map([...this.trackers].map(([name, t]) => [name, t.update(keypoints)]));
  }
}
