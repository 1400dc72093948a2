// `hpv serve BUILD`: plays a .pose file through the web runtime, looping, with an fps / k overlay.
import { readPose, toKeypoints, startRunner, Viewer } from "/web/dist/hpv.js";

const ORT = "/web/node_modules/onnxruntime-web/dist/";
const $ = (id) => document.getElementById(id);
const state = { stats: [], ready: false, error: null, where: null };
window.hpvDemo = state;
let runner = null, viewer = null, playing = null;

async function start(worker) {
  if (viewer) viewer.stop();
  if (playing) await playing.catch(() => {});
  if (runner) await runner.close();
  runner = await startRunner({ buildUrl: "/build/", ortUrl: ORT + "ort.wasm.min.mjs", wasmPaths: ORT,
                               worker: worker ? "/web/dist/worker.js" : false });
  const r = runner.ready;
  state.where = r.where;
  $("build").textContent = `${r.manifest.target} · ${r.manifest.pipeline} · ${r.precision} · ${r.resolution}px · ${r.where}`;
  viewer = new Viewer(runner, $("view"));
}

async function play(buffer) {
  $("error").textContent = "";
  state.buffer = buffer;
  try {
    const kp = toKeypoints(readPose(buffer));
    if (viewer) viewer.stop();
    if (playing) await playing.catch(() => {});
    state.stats = [];
    state.ready = true;
    playing = viewer.play(kp, {
      onFrame: (s) => {
        state.stats.push(s);
        $("overlay").textContent = `frame ${s.index} · ${s.fps.toFixed(1)} fps · k ${s.k}${s.parts ? " +parts" : ""} · `
          + `${s.ms.toFixed(0)} ms · ${state.where}`;
      },
    }, 1e9);
    await playing;
  } catch (e) {
    state.error = String(e.message || e);
    $("error").textContent = state.error;
  }
}

$("file").addEventListener("change", async (e) => { const f = e.target.files[0]; if (f) play(await f.arrayBuffer()); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (e) => {
  e.preventDefault(); drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f) play(await f.arrayBuffer());
});
$("worker").addEventListener("change", async (e) => {
  const last = state.buffer;
  await start(e.target.checked);
  if (last) play(last);
});

try {
  await start($("worker").checked);
  const r = await fetch("/pose/default.pose");
  if (r.ok) play(await r.arrayBuffer());
  else $("overlay").textContent = "drop a .pose file";
} catch (e) {
  state.error = String(e.message || e);
  $("error").textContent = state.error;
}
