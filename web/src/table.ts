// The schedule table (`hpv schedule PROFILE --emit table.json`, docs/schedule-table.md): an app
// looks its device's row up at start-up, as hpv.runtime.table.ScheduleTable.lookup does.
export interface ConfigRecord {
  pipeline: string; generator: string; precision: string; steps: number; batch: number; resolution: number;
  parts?: boolean;  // part stages drawn at this level (absent in tables written before they existed: false)
  per_frame_p90_ms: number; per_frame_p50_ms: number; call_p90_ms: number; expected_psnr_db: number | null;
}
export interface Row {
  fps: number; feasible: boolean; budget_ms: number; config: ConfigRecord | null;
  ladder: ConfigRecord[]; slack_ms?: number | null; best_fps?: number | null; reason: string;
}
export interface DeviceTable { device: string; target: string; model: string; max_fps: number | null; rows: Row[]; }
export interface ScheduleTable { schema_version: number; generator: string; headroom: number; devices: DeviceTable[]; }

export async function loadTable(url: string): Promise<ScheduleTable> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${r.statusText}`);
  const t = (await r.json()) as ScheduleTable;
  if (t.schema_version !== 1 || !Array.isArray(t.devices)) throw new Error(`${url} is not an hpv schedule table`);
  return t;
}

/** The row for `fps` on `device`: the lowest-fps row at or above `fps`; null above every row. */
export function lookup(table: ScheduleTable, device: string, fps: number, target?: string): Row | null {
  const d = table.devices.find((x) => x.device === device && (target === undefined || x.target === target));
  if (!d) {
    throw new Error(`device ${JSON.stringify(device)} is not in the table; it has ${[...new Set(table.devices.map((x) => x.device))].sort().join(", ") || "(none)"}`);
  }
  return [...d.rows].sort((a, b) => a.fps - b.fps).find((r) => r.fps >= fps) ?? null;
}

export interface ViewerPlan { precision: string; steps: number[]; parts: boolean[]; p50Ms: number[]; budgetMs: number; }

/** What the viewer runs from a feasible row: the precision, k and parts per level and their p50s, the budget. */
export function viewerPlan(row: Row): ViewerPlan {
  if (!row.feasible || !row.config) throw new Error(`no configuration holds ${row.fps} fps: ${row.reason}`);
  const precision = row.config.precision;
  const ladder = row.ladder.length ? row.ladder : [row.config];
  const same = ladder.filter((c) => c.precision === precision);
  return { precision, steps: same.map((c) => c.steps), parts: same.map((c) => c.parts ?? false),
           p50Ms: same.map((c) => c.per_frame_p50_ms), budgetMs: row.budget_ms };
}
