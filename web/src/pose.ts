// `.pose` files (pose-format's binary layout, versions 0.0-0.2) read in the browser, reduced to the
// app's 178 points by name and normalized into the 512x512 frame as hpv.pose.load_sequence does:
// shoulder midpoint -> (256, 256), shoulder width -> 204.8 px, medians over the frames that show
// both shoulders. Not ported: OpenPose files and turning a sideways pose upright (hpv does both).
import layout from "./keypoints-layout.json";

export class PoseFileError extends Error {
  constructor(message: string) { super(message); this.name = "PoseFileError"; }
}

export interface PoseComponent { name: string; format: string; points: string[]; }
export interface PoseFile {
  version: number;
  width: number; height: number; depth: number;
  components: PoseComponent[];
  fps: number; frames: number; people: number; dims: number;
  data: Float32Array;        // [frames, people, points, dims]
  confidence: Float32Array;  // [frames, people, points]
}

const MAX_HEADER = 16 << 20;

class Reader {
  private view: DataView;
  offset = 0;
  constructor(private buffer: ArrayBuffer) { this.view = new DataView(buffer); }
  need(n: number, what: string) {
    if (this.offset + n > this.buffer.byteLength) {
      throw new PoseFileError(`truncated .pose file: ${what} needs ${n} bytes at ${this.offset}, the file has ${this.buffer.byteLength}`);
    }
  }
  f32() { this.need(4, "a float"); const v = this.view.getFloat32(this.offset, true); this.offset += 4; return v; }
  u16() { this.need(2, "a ushort"); const v = this.view.getUint16(this.offset, true); this.offset += 2; return v; }
  u32() { this.need(4, "a uint"); const v = this.view.getUint32(this.offset, true); this.offset += 4; return v; }
  str() {
    const n = this.u16();
    this.need(n, "a string");
    const s = new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(this.buffer, this.offset, n));
    this.offset += n;
    return s;
  }
  floats(count: number, what: string): Float32Array {
    this.need(4 * count, what);
    const out = new Float32Array(count);
    const src = this.offset % 4 === 0 ? new Float32Array(this.buffer, this.offset, count)
      : new Float32Array(this.buffer.slice(this.offset, this.offset + 4 * count));
    out.set(src);  // copy: little-endian hosts (every browser) read the file's floats as they are
    this.offset += 4 * count;
    return out;
  }
  left() { return this.buffer.byteLength - this.offset; }
}

export function readPose(buffer: ArrayBuffer): PoseFile {
  const r = new Reader(buffer);
  const version = Math.round(r.f32() * 1000) / 1000;
  if (![0, 0.1, 0.2].includes(version)) throw new PoseFileError(`.pose version ${version} is not supported (0.0, 0.1, 0.2)`);
  const width = r.u16(), height = r.u16(), depth = r.u16();
  const nComponents = r.u16();
  const components: PoseComponent[] = [];
  for (let c = 0; c < nComponents; c++) {
    const name = r.str();
    const format = r.str();
    const nPoints = r.u16(), nLimbs = r.u16(), nColors = r.u16();
    const points = Array.from({ length: nPoints }, () => r.str());
    r.need(4 * nLimbs + 6 * nColors, "limbs and colors");
    r.offset += 4 * nLimbs + 6 * nColors;
    components.push({ name, format, points });
    if (r.offset > MAX_HEADER) throw new PoseFileError("the .pose header is larger than 16 MB");
  }
  const dims = Math.max(...components.map((c) => c.format.length)) - 1;
  const points = components.reduce((s, c) => s + c.points.length, 0);
  let fps: number, frames: number;
  if (version === 0.2) { fps = r.f32(); frames = r.u32(); } else { fps = r.u16(); frames = r.u16(); }
  const people = r.u16();
  if (version !== 0.2) frames = Math.floor(r.left() / (people * points * (dims + 1) * 4));
  if (!(fps > 0 && fps <= 1000)) throw new PoseFileError(`fps must be between 0.001 and 1000, got ${fps}`);
  const data = r.floats(frames * people * points * dims, "the body's points");
  const confidence = r.floats(frames * people * points, "the body's confidences");
  return { version, width, height, depth, components, fps, frames, people, dims, data, confidence };
}

export interface Keypoints {
  frames: number;
  fps: number;
  data: Float32Array;  // [frames, 178, 3]: x, y in the 512 frame, confidence (0: missing)
  depth?: Float32Array;  // [frames, 178]: z (larger = further; 0 where missing), as hpv.pose.keypoints.depth
}

const COMPONENTS: { name: string; points: string[] }[] = layout.components;
export const NUM_KEYPOINTS = COMPONENTS.reduce((s, c) => s + c.points.length, 0);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The pose's `person` as model keypoints, normalized as hpv.pose.load_sequence + keypoints do. */
export function toKeypoints(pose: PoseFile, person = 0): Keypoints {
  if (!(person >= 0 && person < pose.people)) throw new PoseFileError(`person must be in [0, ${pose.people})`);
  const starts = new Map<string, { start: number; points: string[] }>();
  let at = 0;
  for (const c of pose.components) { starts.set(c.name, { start: at, points: c.points }); at += c.points.length; }
  const index: number[] = [];
  for (const c of COMPONENTS) {
    const src = starts.get(c.name);
    if (!src) {
      throw new PoseFileError(`layout not supported in the browser: no ${c.name} (has ${[...starts.keys()].join(", ")}); `
        + "MediaPipe Holistic and the app's reduced layout are read here, OpenPose by hpv in Python");
    }
    for (const p of c.points) {
      const i = src.points.indexOf(p);
      if (i < 0) throw new PoseFileError(`${c.name} lacks point ${p}`);
      index.push(src.start + i);
    }
  }
  const { frames, people, dims } = pose;
  const total = at;
  const N = index.length;
  const pts = new Float64Array(frames * N * 3);
  const seen = new Uint8Array(frames * N);
  const conf = new Float64Array(frames * N);
  for (let t = 0; t < frames; t++) {
    for (let k = 0; k < N; k++) {
      const src = (t * people + person) * total + index[k];
      const c = pose.confidence[src];
      const x = pose.data[src * dims], y = pose.data[src * dims + 1];
      const z = dims > 2 ? pose.data[src * dims + 2] * pose.width : 0;
      const ok = c > 0 && Number.isFinite(c) && [x, y, z].every((v) => Number.isFinite(v) && Math.abs(v) < layout.max_coordinate);
      const o = t * N + k;
      seen[o] = ok ? 1 : 0;
      conf[o] = c;
      if (ok) { pts[3 * o] = x; pts[3 * o + 1] = y; pts[3 * o + 2] = z; }
    }
  }
  const L = COMPONENTS[0].points.indexOf("LEFT_SHOULDER"), R = COMPONENTS[0].points.indexOf("RIGHT_SHOULDER");
  const cx: number[] = [], cy: number[] = [], cz: number[] = [], widths: number[] = [];
  for (let t = 0; t < frames; t++) {
    const l = t * N + L, r = t * N + R;
    if (!(seen[l] && seen[r])) continue;
    cx.push((pts[3 * l] + pts[3 * r]) / 2);
    cy.push((pts[3 * l + 1] + pts[3 * r + 1]) / 2);
    cz.push((pts[3 * l + 2] + pts[3 * r + 2]) / 2);
    widths.push(Math.hypot(pts[3 * l] - pts[3 * r], pts[3 * l + 1] - pts[3 * r + 1]));
  }
  if (!widths.length) throw new PoseFileError("no frame shows both shoulders; cannot normalize");
  const width = median(widths);
  if (!(width > 0)) throw new PoseFileError("shoulders coincide; cannot normalize");
  const scale = layout.shoulder_width / width;
  const [mx, my, mz] = [median(cx), median(cy), median(cz)];
  const out = new Float32Array(frames * N * 3);
  const depth = new Float32Array(frames * N);  // z scaled with x and y, around the shoulders' median z
  for (let o = 0; o < frames * N; o++) {
    if (!seen[o]) continue;
    out[3 * o] = (pts[3 * o] - mx) * scale + layout.shoulder_center[0];
    out[3 * o + 1] = (pts[3 * o + 1] - my) * scale + layout.shoulder_center[1];
    out[3 * o + 2] = Math.min(Math.max(conf[o], 0), 1);
    depth[o] = (pts[3 * o + 2] - mz) * scale;
  }
  return { frames, fps: pose.fps, data: out, depth };
}
