// A build's manifest.json (hpv/artifacts/manifest.schema.json), the parts the web runtime reads.
export interface TensorRecord {
  name: string; shape: (number | string)[]; dtype: string; layout?: string;
  value_range: [number, number] | null; role: string;
}
export interface ArtifactRecord {
  stage: string; precision: string; batch: number | "dynamic"; path: string; format: string;
  inputs: TensorRecord[]; outputs: TensorRecord[];
  state: { input: string; output: string; model_state?: string | null }[];
  verification: { checked_on: string; psnr_db: number; max_abs_error: number };
}
export interface Manifest {
  schema_version: number; target: string; pipeline: string; artifacts: ArtifactRecord[];
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

export type Role = "generator" | "refiner" | "upscaler";

/** Which part of the pipeline an artifact is, from its declared interface. */
export function roleOf(a: ArtifactRecord): Role {
  if (a.outputs.some((t) => t.name === "upscaled")) return "upscaler";
  if (a.inputs.some((t) => t.name === "estimate")) return "refiner";
  return "generator";
}

export function precisions(m: Manifest): string[] {
  const stages = [...new Set(m.artifacts.map((a) => a.stage))];
  const all = [...new Set(m.artifacts.map((a) => a.precision))];
  return all.filter((p) => stages.every((s) => m.artifacts.some((a) => a.stage === s && a.precision === p)));
}

export function pickArtifact(m: Manifest, role: Role, precision: string, batch = 1): ArtifactRecord | null {
  const found = m.artifacts.filter((a) => roleOf(a) === role && a.precision === precision
    && (a.batch === "dynamic" || a.batch === batch));
  if (!found.length && role !== "refiner") {
    throw new ManifestError(`the build has no ${role} at ${precision} (batch ${batch}); it has ${precisions(m).join(", ")}`);
  }
  return found[0] ?? null;
}
