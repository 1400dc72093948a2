// Headless Chromium for hpv's Python side, driven by puppeteer-core (no browser is downloaded:
// the executable is Debian's chromium or $HPV_CHROMIUM). Commands arrive as JSON lines on stdin,
// replies leave as JSON lines on stdout; the page's console goes to stderr.
//   {"id": 1, "cmd": "goto", "url": "..."}           -> {"id": 1, "ok": true}
//   {"id": 2, "cmd": "eval", "expr": "await f()"}    -> {"id": 2, "ok": true, "value": ...}
//   {"id": 3, "cmd": "screenshot", "path": "a.png"}  -> {"id": 3, "ok": true}
// stdin closing (the Python process ending) closes the browser.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const executablePath = process.env.HPV_CHROMIUM || "/usr/bin/chromium";
const webgpu = process.argv.includes("--webgpu");
const profileDir = mkdtempSync(join(tmpdir(), "hpv-chromium-"));
const args = [
  "--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", `--user-data-dir=${profileDir}`,
  "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
];
if (webgpu) args.push("--enable-unsafe-webgpu");

const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
let browser;
const cleanup = async () => {
  try { if (browser) await browser.close(); } catch { /* already gone */ }
  rmSync(profileDir, { recursive: true, force: true });
};

try {
  browser = await puppeteer.launch({ executablePath, headless: true, args, protocolTimeout: 600_000,
                                     defaultViewport: { width: 900, height: 900 } });
} catch (e) {
  send({ ready: false, error: String(e && e.message || e) });
  await cleanup();
  process.exit(3);
}
const page = await browser.newPage();
page.on("console", (m) => process.stderr.write(`[page ${m.type()}] ${m.text()}\n`));
page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
send({ ready: true, version: await browser.version(), userAgent: await browser.userAgent(),
       spawnargs: browser.process()?.spawnargs ?? [] });

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let msg;
  try { msg = JSON.parse(line); } catch { continue; }
  const { id, cmd } = msg;
  try {
    if (cmd === "goto") {
      await page.goto(msg.url, { waitUntil: "load", timeout: msg.timeout_ms ?? 60_000 });
      send({ id, ok: true });
    } else if (cmd === "eval") {
      // An async function body: `return` gives the value (JSON-serializable).
      const value = await page.evaluate(`(async () => { ${msg.expr} })()`);
      send({ id, ok: true, value: value ?? null });
    } else if (cmd === "screenshot") {
      await page.screenshot({ path: msg.path, fullPage: false });
      send({ id, ok: true });
    } else if (cmd === "close") {
      send({ id, ok: true });
      break;
    } else {
      send({ id, ok: false, error: `unknown command ${cmd}` });
    }
  } catch (e) {
    send({ id, ok: false, error: String(e && e.message || e) });
  }
}
await cleanup();
process.exit(0);
