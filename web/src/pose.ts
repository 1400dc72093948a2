// `.pose` files (pose-format's binary layout, versions 0.0-0.2) read in the browser, mapped onto the
// app's 178 points as hpv.pose.source_layouts maps them (MediaPipe Holistic and the app's reduced
// layout by name, OpenPose by the generated point sources) and normalized into the 512x512 frame as
// hpv.pose.load_sequence does: shoulder midpoint -> (256, 256), shoulder width -> 204.8 px, medians
// over the frames that show both shoulders. Not ported: turning a sideways pose upright, and refusing
// shoulders misdetected against the face (hpv.pose.orientation); an upright pose reads the same.
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

function header(r: Reader) {
  const raw = r.f32();
  // pose-format reads 0.0 when the field is exactly 0, else 0.1 or 0.2 to three decimals
  const version = raw === 0 ? 0 : Math.round(raw * 1000) / 1000;
  if (![0, 0.1, 0.2].includes(version)) {
    throw new PoseFileError(`not a .pose file (version field reads ${Number(raw.toPrecision(4))}; expected one of 0.0, 0.1, 0.2)`);
  }
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
  if (!components.length) throw new PoseFileError("not a .pose file: its header lists no components");
  return { version, width, height, depth, components };
}

/** `items` as Python prints a list of strings: hpv's messages, word for word. */
const pyList = (items: string[]) => `[${items.map((s) => `'${s}'`).join(", ")}]`;

type Body = Pick<PoseFile, "fps" | "frames" | "people" | "data" | "confidence">;

/** 0.1 and 0.2: fps, frames, people, then every point, then every confidence. 0.1's frame count
 * overflows its ushort, so (as pose-format does) the frames are what the rest of the file holds. */
function body(r: Reader, version: number, points: number, dims: number): Body {
  const fps = version === 0.2 ? r.f32() : r.u16();
  let frames = version === 0.2 ? r.u32() : r.u16();
  const people = r.u16();
  if (people === 0) throw new PoseFileError("zero people");
  const frameBytes = people * points * (dims + 1) * 4;
  if (version !== 0.2) frames = frameBytes ? Math.floor(r.left() / frameBytes) : 0;
  if (frames === 0) throw new PoseFileError("zero frames");
  const data = r.floats(frames * people * points * dims, "the body's points");
  const confidence = r.floats(frames * people * points, "the body's confidences");
  return { fps, frames, people, data, confidence };
}

/** 0.0: fps and frames, then per frame a people count and per person an id and every point with its
 * confidence. pose-format keeps the first person of each frame (zeros where a frame has none). */
function bodyV0(r: Reader, components: PoseComponent[], points: number, dims: number): Body {
  if (new Set(components.map((c) => c.format.length)).size !== 1) {
    throw new PoseFileError("corrupt: a version 0.0 file needs one point format for every component; found "
      + pyList(components.map((c) => c.format)));
  }
  const fps = r.u16(), frames = r.u16();
  if (frames === 0) throw new PoseFileError("zero frames");
  const data = new Float32Array(frames * points * dims);
  const confidence = new Float32Array(frames * points);
  let mostPeople = 0;
  for (let t = 0; t < frames; t++) {
    const people = r.u16();
    mostPeople = Math.max(mostPeople, people);
    for (let p = 0; p < people; p++) {
      r.need(2, "a person id");
      r.offset += 2;
      const values = r.floats(points * (dims + 1), `frame ${t} of ${frames}`);
      if (p > 0) continue;
      for (let k = 0; k < points; k++) {
        for (let d = 0; d < dims; d++) data[(t * points + k) * dims + d] = values[k * (dims + 1) + d];
        confidence[t * points + k] = values[k * (dims + 1) + dims];
      }
    }
  }
  if (mostPeople === 0) throw new PoseFileError("zero people");
  return { fps, frames, people: 1, data, confidence };
}

export function readPose(buffer: ArrayBuffer): PoseFile {
  const r = new Reader(buffer);
  const head = header(r);
  const dims = Math.max(...head.components.map((c) => c.format.length)) - 1;
  const points = head.components.reduce((s, c) => s + c.points.length, 0);
  const b = head.version === 0 ? bodyV0(r, head.components, points, dims) : body(r, head.version, points, dims);
  if (r.left()) throw new PoseFileError(`corrupt: ${r.left()} unexpected bytes after the frame data`);
  if (!(b.fps >= layout.min_fps && b.fps <= layout.max_fps)) {
    throw new PoseFileError(`the header's fps must be positive, between ${layout.min_fps} and ${layout.max_fps} frames a second; got ${b.fps}`);
  }
  return { ...head, dims, ...b };
}

export interface Keypoints {
  frames: number;
  fps: number;
  data: Float32Array;  // [frames, 178, 3]: x, y in the 512 frame, confidence (0: missing)
  depth?: Float32Array;  // [frames, 178]: z (larger = further; 0 where missing), as hpv.pose.keypoints.depth
  notes: string[];  // what mapping the file's layout lost (hpv's PoseSequence.notes)
}

const COMPONENTS: { name: string; points: string[] }[] = layout.components;
export const NUM_KEYPOINTS = COMPONENTS.reduce((s, c) => s + c.points.length, 0);

/** Where one of the 178 points lies: by its name in `component`, else (where given) at `index`. */
interface PointSource { component: string; point: string; index?: number; }
/** A layout hpv registers (hpv.pose.source_layouts.LAYOUTS), in its order: a file is in the first
 * whose components all have one of their point counts. `sources`: per app point, its source (null:
 * missing), or null where the file holds the app's points by name in components of the same names. */
interface SourceLayout {
  name: string; title: string; describe: string;
  components: { name: string; counts: number[] }[];
  sources: (PointSource | null)[] | null;
  note: string | null;
}
const LAYOUTS: SourceLayout[] = layout.source_layouts;
const BY_NAME: PointSource[] = COMPONENTS.flatMap((c) => c.points.map((point) => ({ component: c.name, point })));

/** The file's point (a flat index; -1: missing) for each of the 178, as hpv.pose.source_layouts's
 * find_layout and the layout's reduce find them, with the same refusals. */
function mapLayout(pose: PoseFile): { index: number[]; notes: string[] } {
  const found = new Map(pose.components.map((c) => [c.name, c.points.length]));
  const match = LAYOUTS.find((l) => l.components.every((c) => c.counts.includes(found.get(c.name) ?? -1)));
  if (!match) {
    const has = pose.components.map((c) => `${c.name} (${c.points.length})`).join(", ") || "no components";
    throw new PoseFileError(`not a supported pose layout. Supported layouts: ${LAYOUTS.map((l) => l.describe).join("; ")}. `
      + `This file has: ${has}. Convert it to one of these (e.g. re-extract the pose with MediaPipe Holistic)`);
  }
  const starts = new Map<string, { start: number; points: string[] }>();
  let at = 0;
  for (const c of pose.components) { starts.set(c.name, { start: at, points: c.points }); at += c.points.length; }
  const missing: string[] = [];
  const index = (match.sources ?? BY_NAME).map((s) => {
    if (!s) return -1;
    const { start, points } = starts.get(s.component)!;
    const i = points.indexOf(s.point);
    if (i >= 0) return start + i;
    if (s.index !== undefined) return start + s.index;
    missing.push(`${s.component}/${s.point}`);
    return -1;
  });
  if (missing.length) {
    throw new PoseFileError(`${match.title} layout lacks points ${pyList(missing.slice(0, 8))}${missing.length > 8 ? " ..." : ""}`);
  }
  if (pose.dims < 2) throw new PoseFileError(`points need at least X and Y; formats are ${pyList(pose.components.map((c) => c.format))}`);
  return { index, notes: match.note ? [match.note] : [] };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The pose's `person` as model keypoints, normalized as hpv.pose.load_sequence + keypoints do. */
export function toKeypoints(pose: PoseFile, person = 0): Keypoints {
  const { index, notes } = mapLayout(pose);
  if (!(person >= 0 && person < pose.people)) throw new PoseFileError(`person must be in [0, ${pose.people})`);
  const { frames, people, dims } = pose;
  const total = pose.components.reduce((s, c) => s + c.points.length, 0);
  const N = index.length;
  const pts = new Float64Array(frames * N * 3);
  const seen = new Uint8Array(frames * N);
  const conf = new Float64Array(frames * N);
  for (let t = 0; t < frames; t++) {
    for (let k = 0; k < N; k++) {
      if (index[k] < 0) continue;  // missing in this layout: unseen
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
  return { frames, fps: pose.fps, data: out, depth, notes };
}
