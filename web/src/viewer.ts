// Plays a pose sequence: each frame's keypoints through the runner at the controller's level (k,
// parts on or off), keyed and drawn to a canvas. The ladder runs from the plan's configuration
// (level 0) down: the part stages off first, then fewer steps, as hpv.runtime.scheduler.ladder.
import { ChromaRenderer } from "./chroma";
import { Controller, ControllerSettings } from "./controller";
import { Keypoints } from "./pose";
import { Runner } from "./runner";

export interface ViewerOptions {
  fps?: number;            // playback rate (default: the pose's own)
  headroom?: number;       // budget = headroom x frame period (as hpv schedule)
  k?: number;              // the plan's refinement steps (default: the pipeline's most)
  parts?: boolean;         // draw the part stages where the build has them (default true)
  p50Ms?: number[];        // profiled ms per frame per level (default: measured on the first frames)
  plan?: { steps: number[]; parts?: boolean[]; p50Ms: number[]; budgetMs: number };  // a schedule table row (viewerPlan)
  settings?: Partial<ControllerSettings>;
  onFrame?: (s: FrameStats) => void;
}
export interface FrameStats { index: number; k: number; parts: boolean; ms: number; fps: number; level: number; }

interface Level { k: number; parts: boolean; }

/** Without a plan: k = top with the parts (where the build has them), then without, then fewer steps. */
function defaultLadder(top: number, parts: boolean): Level[] {
  const levels = Array.from({ length: top + 1 }, (_, i) => ({ k: top - i, parts: false }));
  return parts ? [{ k: top, parts: true }, ...levels] : levels;
}

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
    const { resolution, range, maxSteps, hasParts } = this.runner.ready;
    const fps = o.fps ?? pose.fps;
    const top = Math.min(o.k ?? maxSteps, maxSteps);
    const drawParts = hasParts && o.parts !== false;
    const ladder: Level[] = o.plan
      ? o.plan.steps.map((k, i) => ({ k, parts: drawParts && (o.plan!.parts?.[i] ?? false) }))
      : defaultLadder(top, drawParts);
    const stats: FrameStats[] = [];
    const N = pose.data.length / pose.frames, D = N / 3;
    const at = (t: number) => ({ kp: pose.data.subarray(t * N, (t + 1) * N), depth: pose.depth?.subarray(t * D, (t + 1) * D) ?? null });
    let p50 = o.plan ? o.plan.p50Ms : o.p50Ms;
    if (!p50) {  // profile each level on the first frames (two runs each, the second counts)
      p50 = [];
      const { kp, depth } = at(0);
      for (const { k, parts } of ladder) {
        await this.runner.frame(kp, k, { parts, depth });
        const f = await this.runner.frame(kp, k, { parts, depth });
        p50.push(f.times.total);
      }
      await this.runner.reset(pose.fps);
    }
    const budget = o.plan ? o.plan.budgetMs : (o.headroom ?? 0.85) * 1000 / fps;
    this.controller = new Controller(p50, budget, o.settings ?? {}, 1000 / fps);
    this.stopped = false;
    let last = performance.now();
    for (let loop = 0; loop < loops && !this.stopped; loop++) {
      await this.runner.reset(pose.fps);  // the part boxes are smoothed at the sequence's own rate
      for (let t = 0; t < pose.frames && !this.stopped; t++) {
        const level = this.controller.level;
        const { k, parts } = ladder[level];
        const { kp, depth } = at(t);
        const f = await this.runner.frame(kp, k, { parts, depth });
        this.renderer.draw(f.image, resolution, range);
        this.controller.observe(f.times.total);
        const wait = 1000 / fps - (performance.now() - last);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const now = performance.now();
        const s = { index: stats.length, k, parts, ms: f.times.total, fps: 1000 / (now - last), level };
        last = now;
        stats.push(s);
        o.onFrame?.(s);
      }
    }
    return stats;
  }
}
