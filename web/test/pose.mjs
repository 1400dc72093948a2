// node test/pose.mjs FILE.pose OUT.bin: the browser reader's view of a .pose file: a JSON line
// (header) on stdout, and OUT.bin = float32 data, confidence, the [T, 178, 3] keypoints, then their
// depth [T, 178].
import { readFileSync, writeFileSync } from "node:fs";
import { readPose, toKeypoints } from "../dist/hpv.js";

const bytes = readFileSync(process.argv[2]);
const pose = readPose(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
const kp = toKeypoints(pose);
const out = new Float32Array(pose.data.length + pose.confidence.length + kp.data.length + kp.depth.length);
out.set(pose.data, 0);
out.set(pose.confidence, pose.data.length);
out.set(kp.data, pose.data.length + pose.confidence.length);
out.set(kp.depth, pose.data.length + pose.confidence.length + kp.data.length);
writeFileSync(process.argv[3], Buffer.from(out.buffer));
const { data, confidence, ...header } = pose;
process.stdout.write(JSON.stringify({ ...header, keypoint_frames: kp.frames }));
