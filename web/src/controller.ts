// The online controller, ported from hpv/runtime/controller.py (its docstring spells out the
// logic); tests/runtime/controller_vectors.json checks that both make the same decisions.
export interface ControllerSettings {
  window: number; ignore_slowest: number; min_gap: number;
  up_frames: number; cooldown_frames: number; down_cooldown_frames: number;
}
export const DEFAULT_SETTINGS: ControllerSettings = {
  window: 9, ignore_slowest: 1, min_gap: 0.05, up_frames: 30, cooldown_frames: 30, down_cooldown_frames: 5,
};
export interface Switch { frame: number; from: number; to: number; ratio: number; }

export class Controller {
  level = 0;
  frames = 0;
  misses = 0;
  switches: Switch[] = [];
  private ratios: number[] = [];
  private sinceChange = 0;
  private fitAbove = 0;
  readonly settings: ControllerSettings;
  readonly deadlineMs: number;

  /** p50Ms[i]: level i's profiled per-frame p50 (0 = the plan's configuration, higher = cheaper). */
  constructor(readonly p50Ms: number[], readonly budgetMs: number,
              settings: Partial<ControllerSettings> = {}, deadlineMs?: number) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    const s = this.settings;
    if (!p50Ms.length) throw new Error("the controller needs a ladder of at least one configuration");
    if (!(budgetMs > 0)) throw new Error(`budget_ms must be positive, got ${budgetMs}`);
    if (s.window < 3 || s.window % 2 === 0) throw new Error(`window must be odd and at least 3, got ${s.window}`);
    if (!(s.ignore_slowest >= 0 && s.ignore_slowest < (s.window >> 1))) throw new Error("ignore_slowest out of range");
    this.deadlineMs = deadlineMs ?? budgetMs;
  }

  /** Measured / profiled speed (the window's median); null until the window is full. */
  get ratio(): number | null {
    if (this.ratios.length < this.settings.window) return null;
    return [...this.ratios].sort((a, b) => a - b)[this.settings.window >> 1];
  }

  private upper(): number {
    const o = [...this.ratios].sort((a, b) => a - b), s = this.settings;
    return Math.max(o[s.window - 1 - s.ignore_slowest], o[s.window >> 1] * (1 + s.min_gap));
  }

  fits(level: number, ratio: number): boolean { return ratio * this.p50Ms[level] <= this.budgetMs; }

  /** Feed one frame's measured time (ms per frame); returns the level for the next frame. */
  observe(frameMs: number): number {
    const s = this.settings;
    this.frames += 1;
    if (frameMs > this.deadlineMs) this.misses += 1;
    this.sinceChange += 1;
    this.ratios.push(frameMs / this.p50Ms[this.level]);
    if (this.ratios.length > s.window) this.ratios.shift();
    const r = this.ratio;
    if (r === null) return this.level;
    if (!this.fits(this.level, r) && this.level < this.p50Ms.length - 1 && this.sinceChange > s.down_cooldown_frames) {
      this.switchTo(this.level + 1, r);
    } else if (this.level > 0 && this.fits(this.level - 1, this.upper())) {
      this.fitAbove += 1;
      if (this.fitAbove >= s.up_frames && this.sinceChange > s.cooldown_frames) this.switchTo(this.level - 1, r);
    } else {
      this.fitAbove = 0;
    }
    return this.level;
  }

  private switchTo(to: number, ratio: number) {
    this.switches.push({ frame: this.frames, from: this.level, to, ratio: Math.round(ratio * 1e4) / 1e4 });
    this.level = to;
    this.sinceChange = 0;
    this.fitAbove = 0;
  }
}

/** The level each frame of a trace ran at (read before observing it), as hpv's `replay`. */
export function replay(p50Ms: number[], budgetMs: number, frameMs: number[],
                       settings: Partial<ControllerSettings> = {}): { levels: number[]; switches: Switch[] } {
  const c = new Controller(p50Ms, budgetMs, settings);
  const levels: number[] = [];
  for (const ms of frameMs) { levels.push(c.level); c.observe(ms); }
  return { levels, switches: c.switches };
}
