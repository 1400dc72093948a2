// Plays a pose sequence: each frame's keypoints through the runner at the controller's k, keyed
// and drawn to a canvas. The ladder runs from the plan's k (level 0) down to k = 0.
import { ChromaRenderer } from "./chroma";
import { Controller, ControllerSettings } from "./controller";
import { Keypoints } from "./pose";
import { Runner } from "./runner";

export interface ViewerOptions {
  fps?: number;            // playback rate (default: the pose's own)
  headroom?: number;       // budget = headroom x frame period (as hpv schedule)
  k?: number;              // the plan's refinement steps (default: the pipeline's most)
  p50Ms?: number[];        // profiled ms per frame for k = plan..0 (default: measured on the first frames)
  plan?: { steps: number[]; p50Ms: number[]; budgetMs: number };  // a schedule table row (viewerPlan)
  settings?: Partial<ControllerSettings>;
  onFrame?: (s: FrameStats) => void;
}
export interface FrameStats { index: number; k: number; ms: number; fps: number; level: number; }

export class Viewer {
  private renderer: ChromaRenderer;
  private stopped = false;
  controller: Controller | null = null;

  constructor(readonly runner: Runner, readonly canvas: HTMLCanvasElement | OffscreenCanvas) {
    this.renderer = new ChromaRenderer(canvas);
  }

  stop() { this.stopped = true; }

  /** Play `pose` once (or `loops` times); resolves with per-frame stats. */
  async play(pose: Keypoints, o: ViewerOptions = {}, loops = 1): Promise<FrameStats[]> {
    const { resolution, range, maxSteps } = this.runner.ready;
    const fps = o.fps ?? pose.fps;
    const top = Math.min(o.k ?? maxSteps, maxSteps);
    const ladderK = o.plan ? o.plan.steps : Array.from({ length: top + 1 }, (_, i) => top - i);
    const stats: FrameStats[] = [];
    const N = pose.data.length / pose.frames;
    let p50 = o.plan ? o.plan.p50Ms : o.p50Ms;
    if (!p50) {  // profile each level on the first frames (two runs each, the second counts)
      p50 = [];
      for (const k of ladderK) {
        await this.runner.frame(pose.data.subarray(0, N), k);
        const f = await this.runner.frame(pose.data.subarray(0, N), k);
        p50.push(f.times.total);
      }
      await this.runner.reset();
    }
    const budget = o.plan ? o.plan.budgetMs : (o.headroom ?? 0.85) * 1000 / fps;
    this.controller = new Controller(p50, budget, o.settings ?? {}, 1000 / fps);
    this.stopped = false;
    let last = performance.now();
    for (let loop = 0; loop < loops && !this.stopped; loop++) {
      await this.runner.reset();
      for (let t = 0; t < pose.frames && !this.stopped; t++) {
        const level = this.controller.level;
        const k = ladderK[level];
        const f = await this.runner.frame(pose.data.subarray(t * N, (t + 1) * N), k);
        this.renderer.draw(f.image, resolution, range);
        this.controller.observe(f.times.total);
        const wait = 1000 / fps - (performance.now() - last);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const now = performance.now();
        const s = { index: stats.length, k, ms: f.times.total, fps: 1000 / (now - last), level };
        last = now;
        stats.push(s);
        o.onFrame?.(s);
      }
    }
    return stats;
  }
}
