// node test/pose.mjs FILE.pose OUT.bin: the browser reader's view of a .pose file: a JSON line
// (header, and the mapping's notes) on stdout, and OUT.bin = float32 data, confidence, the
// [T, 178, 3] keypoints, then their depth [T, 178]. A file the reader refuses: exit 2, and a JSON
// line {"refused": name, "message": ...}.
import { readFileSync, writeFileSync } from "node:fs";
import { readPose, toKeypoints, PoseFileError } from "../dist/hpv.js";

const bytes = readFileSync(process.argv[2]);
let pose, kp;
try {
  pose = readPose(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  kp = toKeypoints(pose);
} catch (e) {
  if (!(e instanceof PoseFileError)) throw e;
  process.stdout.write(JSON.stringify({ refused: e.name, message: e.message }));
  process.exit(2);
}
const out = new Float32Array(pose.data.length + pose.confidence.length + kp.data.length + kp.depth.length);
out.set(pose.data, 0);
out.set(pose.confidence, pose.data.length);
out.set(kp.data, pose.data.length + pose.confidence.length);
out.set(kp.depth, pose.data.length + pose.confidence.length + kp.data.length);
writeFileSync(process.argv[3], Buffer.from(out.buffer));
const { data, confidence, ...header } = pose;
process.stdout.write(JSON.stringify({ ...header, keypoint_frames: kp.frames, notes: kp.notes }));
