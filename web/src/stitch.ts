// Stitching the parts into the frame, ported from hpv/runtime/stitch.py (docs/stitching.md is the
// contract): a part's crop of the frame (bilinear at the crop pixel centres, `sampleCrop`), its
// generated colour and alpha blended back over the frame ("over" on premultiplied colour, bilinear,
// taps outside the crop reading 0: `paste`), back to front in `layerOrder`. Images are planar
// float32 [C, H, W]. Only the pixels a crop covers are touched: a layer costs its own box, read
// separably (two crop rows per frame row, then two columns per frame column).
import { CropTransform, frameExtent, HANDS, PartBox } from "./crops";
import layout from "./keypoints-layout.json";
import partsLayout from "./parts-layout.json";

const BEHIND_BODY: number = partsLayout.behind_body;

/** One part's generated crop and where it goes: colour [3, S, S] and alpha [1, S, S] in [0, 1]. */
export interface PartLayer { name: string; color: Float32Array; alpha: Float32Array; transform: CropTransform; }

/** Bilinear taps at `positions` over `size` samples (hpv's `_taps`): position p reads samples i0
 *  and i0 + 1 with weights (1 - f, f) (float32, as hpv rounds them); a tap outside [0, size) has
 *  weight 0 and i0 is clamped to [-1, size - 1], so no read leaves the samples. */
interface Taps { i0: Int32Array; w0: Float32Array; w1: Float32Array; }

function taps(positions: Float64Array, size: number): Taps {
  const n = positions.length;
  const t = { i0: new Int32Array(n), w0: new Float32Array(n), w1: new Float32Array(n) };
  for (let k = 0; k < n; k++) {
    const i = Math.floor(positions[k]), f = positions[k] - i;
    t.w0[k] = i >= 0 && i < size ? 1 - f : 0;
    t.w1[k] = i + 1 >= 0 && i + 1 < size ? f : 0;
    t.i0[k] = Math.min(Math.max(i, -1), size - 1);
  }
  return t;
}

/** [C, Ny, Nx]: `src` [C, H, W] (row stride W, starting at row `y0`, column `x0` of a larger
 *  [C, srcH, srcW] image) read bilinearly at the taps' rows and columns, taps outside reading 0. */
function resample(src: Float32Array, srcH: number, srcW: number, y0: number, x0: number, h: number, w: number,
                  ty: Taps, tx: Taps, channels: number): Float32Array {
  const ny = ty.i0.length, nx = tx.i0.length;
  const out = new Float32Array(channels * ny * nx);
  const row = new Float32Array(w);
  for (let c = 0; c < channels; c++) {
    const plane = c * srcH * srcW;
    for (let i = 0; i < ny; i++) {
      const r0 = ty.i0[i], a = ty.w0[i], b = ty.w1[i];
      const top = plane + (y0 + r0) * srcW + x0, bottom = top + srcW;
      for (let u = 0; u < w; u++) row[u] = (a ? a * src[top + u] : 0) + (b ? b * src[bottom + u] : 0);
      const o = (c * ny + i) * nx;
      for (let j = 0; j < nx; j++) {
        const c0 = tx.i0[j], p = tx.w0[j], q = tx.w1[j];
        out[o + j] = (p ? p * row[c0] : 0) + (q ? q * row[c0 + 1] : 0);
      }
    }
  }
  return out;
}

/** The crop [C, S, S] of `frame` [C, R, R] under `t` (hpv's sample_crop, not antialiased): each crop
 *  pixel centre's frame position, clamped to the frame's edge pixels, read bilinearly. */
export function sampleCrop(frame: Float32Array, t: CropTransform, channels = 3): Float32Array {
  const r = t.resolution, s = t.size;
  if (frame.length !== channels * r * r) {
    throw new Error(`sampleCrop wants a frame [${channels}, ${r}, ${r}] for its transform; got ${frame.length} values`);
  }
  const x = new Float64Array(s), y = new Float64Array(s);
  for (let k = 0; k < s; k++) {
    x[k] = Math.min(Math.max(t.sx * (k + 0.5) + t.ox - 0.5, 0), r - 1);
    y[k] = Math.min(Math.max(t.sy * (k + 0.5) + t.oy - 0.5, 0), r - 1);
  }
  const span = (p: Float64Array): [number, number] =>
    [Math.floor(Math.min(...p)), Math.min(r, Math.floor(Math.max(...p)) + 2)];
  const [y0, y1] = span(y), [x0, x1] = span(x);
  for (let k = 0; k < s; k++) { x[k] -= x0; y[k] -= y0; }
  return resample(frame, r, r, y0, x0, y1 - y0, x1 - x0, taps(y, y1 - y0), taps(x, x1 - x0), channels);
}

/** Frame rows and columns [start, stop) that can receive a non-zero sample of the crop (its square
 *  grown by one crop pixel for the bilinear border), clipped to the frame. */
function covered(t: CropTransform): { rows: [number, number]; cols: [number, number] } {
  const [x0, y0, x1, y1] = frameExtent(t), k = Math.abs(t.sx);
  return {
    rows: [Math.max(0, Math.floor(y0 - k - 0.5)), Math.min(t.resolution, Math.ceil(y1 + k + 0.5))],
    cols: [Math.max(0, Math.floor(x0 - k - 0.5)), Math.min(t.resolution, Math.ceil(x1 + k + 0.5))],
  };
}

/** `frame` [3, R, R] with one layer blended over it, in place: frame = P + (1 - A) frame, P and A
 *  the bilinear samples of the premultiplied colour and of the alpha. Separable, and fused with
 *  the blend: each covered frame row mixes two crop rows once, then each of its pixels two columns. */
export function paste(frame: Float32Array, layer: PartLayer): Float32Array {
  const t = layer.transform, s = t.size, R = t.resolution;
  if (layer.color.length !== 3 * s * s || layer.alpha.length !== s * s) {
    throw new Error(`part ${layer.name}: colour must be [3, ${s}, ${s}] and alpha [1, ${s}, ${s}] for its transform's `
      + `crop size ${s}; got ${layer.color.length} and ${layer.alpha.length} values`);
  }
  const { rows, cols } = covered(t);
  if (rows[0] >= rows[1] || cols[0] >= cols[1]) return frame;
  const u = Float64Array.from({ length: cols[1] - cols[0] }, (_, j) => (cols[0] + j + 0.5 - t.ox) / t.sx - 0.5);
  const v = Float64Array.from({ length: rows[1] - rows[0] }, (_, i) => (rows[0] + i + 0.5 - t.oy) / t.sy - 0.5);
  // premultiplied colour, then alpha, each [S + 2, S + 2] with a zero border: a tap outside the
  // crop (weight 0) reads a zero there, so the loops below need no branch
  const n = s * s, w = s + 2, src = new Float32Array(4 * w * w);
  for (let c = 0; c < 4; c++) {
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const a = layer.alpha[y * s + x];
        src[(c * w + y + 1) * w + x + 1] = c < 3 ? layer.color[c * n + y * s + x] * a : a;
      }
    }
  }
  const ty = taps(v, s), tx = taps(u, s);
  const row = new Float32Array(4 * w), plane = R * R;
  for (let i = 0; i < v.length; i++) {
    const a = ty.w0[i], b = ty.w1[i];
    if (!a && !b) continue;  // nothing of the crop reaches this row: it stays as it is
    const top = (ty.i0[i] + 1) * w;
    for (let c = 0; c < 4; c++) {
      const o = c * w, q = c * w * w + top;
      for (let x = 0; x < w; x++) row[o + x] = a * src[q + x] + b * src[q + w + x];
    }
    const f0 = (rows[0] + i) * R + cols[0];
    for (let j = 0; j < u.length; j++) {
      const p = tx.w0[j], q = tx.w1[j], k = tx.i0[j] + 1;
      if (!p && !q) continue;
      const keep = Math.fround(1 - Math.fround(p * row[3 * w + k] + q * row[3 * w + k + 1]));
      for (let c = 0; c < 3; c++) {
        const f = c * plane + f0 + j;
        frame[f] = Math.fround(frame[f] * keep) + Math.fround(p * row[c * w + k] + q * row[c * w + k + 1]);
      }
    }
  }
  return frame;
}

/** `frame` [3, R, R] with the layers blended over it back to front, in `order` (part names; null:
 *  the layers' own order); in place with `inPlace`, else into a copy. */
export function stitch(frame: Float32Array, layers: PartLayer[], order: string[] | null = null,
                       inPlace = false): Float32Array {
  const out = inPlace ? frame : frame.slice();
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const name of order ?? layers.map((l) => l.name)) {
    const layer = byName.get(name);
    if (!layer) throw new Error(`order names ${JSON.stringify(name)}, which has no layer; layers: ${[...byName.keys()].join(", ")}`);
    if (3 * layer.transform.resolution ** 2 !== out.length) {
      throw new Error(`part ${name}: its transform is for a ${layer.transform.resolution} frame; the frame has ${out.length} values`);
    }
    paste(out, layer);
  }
  return out;
}

const BODY: string[] = layout.components[0].points;
const body = (name: string) => {
  const i = BODY.indexOf(name);
  if (i < 0 || layout.components[0].name !== "POSE_LANDMARKS") throw new Error(`the layout has no body point ${name}`);
  return i;
};
const LS = body("LEFT_SHOULDER"), RS = body("RIGHT_SHOULDER");
const TORSO = [LS, RS, body("RIGHT_HIP"), body("LEFT_HIP")];
const WRIST: Record<string, number> = { left_hand: body("LEFT_WRIST"), right_hand: body("RIGHT_WRIST") };

/** Whether (x, y) lies inside the quadrilateral shoulders-hips (all four seen). */
function torsoContains(kp: Float32Array, x: number, y: number): boolean {
  if (!TORSO.every((i) => kp[3 * i + 2] > 0)) return false;
  const signs = TORSO.map((a, k) => {
    const b = TORSO[(k + 1) % 4];
    const ax = kp[3 * a], ay = kp[3 * a + 1], bx = kp[3 * b], by = kp[3 * b + 1];
    return Math.sign((bx - ax) * (y - ay) - (by - ay) * (x - ax));
  });
  return signs.every((s) => s >= 0) || signs.every((s) => s <= 0);
}

/** The parts to draw, back to front (hpv's layer_order): absent parts left out; the face first; a
 *  hand hidden when `z` [178] (larger = further) puts its wrist more than BEHIND_BODY shoulder
 *  widths behind the shoulders and its box centre inside the torso; then the hands, the further
 *  first by wrist z (both wrists seen), else the smaller box first; ties: left first. */
export function layerOrder(kp: Float32Array, boxes: Map<string, PartBox>, z: Float32Array | null = null): string[] {
  const drawn = (name: string) => { const b = boxes.get(name); return b !== undefined && b.state !== "absent"; };
  const order = drawn("face") ? ["face"] : [];
  let hands: string[] = HANDS.filter(drawn);
  let useZ = z !== null;
  if (z) {
    if (kp[3 * LS + 2] > 0 && kp[3 * RS + 2] > 0) {
      const dx = kp[3 * LS] - kp[3 * RS], dy = kp[3 * LS + 1] - kp[3 * RS + 1];
      const width = Math.sqrt(dx * dx + dy * dy);
      const shouldersZ = (z[LS] + z[RS]) / 2;
      hands = hands.filter((h) => !(kp[3 * WRIST[h] + 2] > 0 && z[WRIST[h]] - shouldersZ > BEHIND_BODY * width
        && torsoContains(kp, boxes.get(h)!.cx, boxes.get(h)!.cy)));
    }
    useZ = hands.every((h) => kp[3 * WRIST[h] + 2] > 0);
  }
  hands.sort(useZ ? (a, b) => z![WRIST[b]] - z![WRIST[a]] : (a, b) => boxes.get(a)!.side - boxes.get(b)!.side);
  return [...order, ...hands];
}
