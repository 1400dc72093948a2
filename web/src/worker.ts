// The Web Worker side of runner.ts: the pipeline runs here, frames go back as transferred buffers.
import { startMain, Runner } from "./runner";

let runner: Runner | null = null;
self.onmessage = async (e: MessageEvent) => {
  const { id, type } = e.data;
  try {
    if (type === "init") {
      runner = await startMain({ ...e.data.options, worker: false });
      (self as any).postMessage({ id, value: runner.ready });
    } else if (type === "frame") {
      const f = await runner!.frame(e.data.keypoints, e.data.k, { parts: e.data.parts, depth: e.data.depth });
      (self as any).postMessage({ id, value: f }, [f.image.buffer]);
    } else if (type === "reset") {
      await runner!.reset(e.data.fps);
      (self as any).postMessage({ id, value: true });
    } else if (type === "close") {
      await runner?.close();
      (self as any).postMessage({ id, value: true });
    }
  } catch (err) {
    (self as any).postMessage({ id, error: String((err as Error)?.message ?? err) });
  }
};
