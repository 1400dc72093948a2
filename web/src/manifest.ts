// A build's manifest.json (hpv/artifacts/manifest.schema.json), the parts the web runtime reads.
export interface TensorRecord {
  name: string; shape: (number | string)[]; dtype: string; layout?: string;
  value_range: [number, number] | null; role: string;
}
export interface ArtifactRecord {
  stage: string; precision: string; batch: number | "dynamic"; path: string; format: string;
  params?: Record<string, unknown>;  // the stage's build parameters (a refiner's max_steps)
  inputs: TensorRecord[]; outputs: TensorRecord[];
  state: { input: string; output: string; model_state?: string | null }[];
  verification: { checked_on: string; psnr_db: number; max_abs_error: number };
}
export interface Manifest {
  schema_version: number; target: string; pipeline: string; artifacts: ArtifactRecord[];
  part_stages?: Record<string, string>;  // part -> the stage that draws it (absent in builds before part stages)
  max_steps?: number | null;  // the pipeline's K: k = 0..max_steps (absent in older builds)
}

export class ManifestError extends Error {
  constructor(message: string) { super(message); this.name = "ManifestError"; }
}

export async function loadManifest(buildUrl: string): Promise<Manifest> {
  const url = new URL("manifest.json", buildUrl.endsWith("/") ? buildUrl : buildUrl + "/");
  const r = await fetch(url);
  if (!r.ok) throw new ManifestError(`${url}: ${r.status} ${r.statusText}`);
  const m = (await r.json()) as Manifest;
  if (m.schema_version !== 1 || !Array.isArray(m.artifacts)) {
    throw new ManifestError(`${url} is not an hpv-compile manifest (schema_version ${m.schema_version})`);
  }
  return m;
}

export type Role = "generator" | "refiner" | "upscaler" | "part";

/** Which part of the pipeline an artifact is, from its declared interface: a part stage takes the
 *  frame's crop (`context`) and gives colour and alpha to stitch in. */
export function roleOf(a: ArtifactRecord): Role {
  if (a.outputs.some((t) => t.name === "upscaled")) return "upscaler";
  if (a.inputs.some((t) => t.name === "estimate")) return "refiner";
  if (a.inputs.some((t) => t.name === "context") || a.outputs.some((t) => t.name === "alpha")) return "part";
  return "generator";
}

export function precisions(m: Manifest): string[] {
  const stages = [...new Set(m.artifacts.map((a) => a.stage))];
  const all = [...new Set(m.artifacts.map((a) => a.precision))];
  return all.filter((p) => stages.every((s) => m.artifacts.some((a) => a.stage === s && a.precision === p)));
}

const fits = (a: ArtifactRecord, precision: string, batch: number) =>
  a.precision === precision && (a.batch === "dynamic" || a.batch === batch);

/** The generator, refiner or upscaler at `precision` for `batch` frames a call (a refiner may be
 *  missing: null). Part stages are picked by stage (`pickStage`), never here. */
export function pickArtifact(m: Manifest, role: Exclude<Role, "part">, precision: string, batch = 1): ArtifactRecord | null {
  const found = m.artifacts.filter((a) => roleOf(a) === role && fits(a, precision, batch));
  if (!found.length && role !== "refiner") {
    throw new ManifestError(`the build has no ${role} at ${precision} (batch ${batch}); it has ${precisions(m).join(", ")}`);
  }
  return found[0] ?? null;
}

/** The artifact of `stage` at `precision` that runs `batch` frames a call (hpv's pick_artifact). */
export function pickStage(m: Manifest, stage: string, precision: string, batch = 1): ArtifactRecord {
  const found = m.artifacts.find((a) => a.stage === stage && fits(a, precision, batch));
  if (!found) {
    const have = m.artifacts.filter((a) => a.stage === stage).map((a) => `${a.precision} batch ${a.batch}`);
    throw new ManifestError(`the build has no ${stage} at ${precision} for batch ${batch}; it has ${have.join(", ") || "none"}`);
  }
  return found;
}

/** Part -> the stage that draws it, from the manifest; empty for a build without part stages. */
export function partStages(m: Manifest): Record<string, string> {
  const parts = m.artifacts.filter((a) => roleOf(a) === "part").map((a) => a.stage);
  const declared = m.part_stages ?? {};
  if (parts.length && !Object.keys(declared).length) {
    throw new ManifestError(`the build has part stages (${[...new Set(parts)].join(", ")}) but its manifest does not say `
      + "which part each draws (part_stages): rebuild it with this hpv-compile");
  }
  for (const [part, stage] of Object.entries(declared)) {
    if (!parts.includes(stage)) throw new ManifestError(`part_stages draws ${part} with ${stage}, which is not a part stage of the build`);
  }
  return { ...declared };
}
