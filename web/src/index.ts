// @hpv/web: the human pose viewer in the browser (an hpv-compile onnx-wasm / onnx-webgpu build).
export { readPose, toKeypoints, PoseFileError, NUM_KEYPOINTS } from "./pose";
export type { PoseFile, Keypoints } from "./pose";
export { Controller, replay, DEFAULT_SETTINGS } from "./controller";
export type { ControllerSettings, Switch } from "./controller";
export { loadManifest, pickArtifact, precisions, roleOf, ManifestError } from "./manifest";
export type { Manifest, ArtifactRecord, TensorRecord } from "./manifest";
export { WebPipeline } from "./pipeline";
export { ChromaRenderer } from "./chroma";
export { startRunner, startMain } from "./runner";
export type { Runner, RunnerOptions, Ready, Frame } from "./runner";
export { Viewer } from "./viewer";
export type { ViewerOptions, FrameStats } from "./viewer";
export { loadTable, lookup, viewerPlan } from "./table";
export type { ScheduleTable, DeviceTable, Row, ConfigRecord } from "./table";
