"""Running artifacts inside a real browser: a local COOP/COEP server (`server`), headless Chromium
driven by puppeteer-core from the repo's `web/` package (`chromium`), and a verification runner
for ONNX artifacts on onnxruntime-web's execution providers (`runner`)."""
