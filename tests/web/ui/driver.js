// Drives Debian's headless Chromium with playwright-core for tests/web/test_ui.py and
// bench/bench_gateway.py. One JSON command per stdin line, one JSON answer per stdout line:
//   {"id": 1, "op": "goto", "url": "..."}            -> {"id": 1, "ok": true, "value": ...}
//   ops: goto(url), eval(expr: an expression, awaited), wait(expr, timeout), click(selector),
//        fill(selector, value), press(selector, key), screenshot(path, fullPage?, clip?), errors(), close()
// errors() returns the page errors, console errors and requests that left the gateway's origin.
// Never downloads a browser: executablePath is /usr/bin/chromium (KTL_TEST_CHROMIUM).
"use strict";
const readline = require("readline");
const { chromium } = require("playwright-core");

const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage",
];

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.KTL_TEST_CHROMIUM || "/usr/bin/chromium",
    args: ARGS,
    headless: true,
    timeout: 60000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  let origin = null;
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push("console: " + m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) errors.push("http " + r.status() + " " + r.request().method() + " " + r.url()); });
  page.on("request", (r) => {
    const url = r.url();
    if (origin && !url.startsWith(origin) && !url.startsWith("data:") && !url.startsWith("blob:")) {
      errors.push("offsite request: " + url);
    }
  });
  const ops = {
    async goto(c) {
      origin = new URL(c.url).origin;
      const r = await page.goto(c.url, { waitUntil: "load", timeout: c.timeout || 30000 });
      return { status: r ? r.status() : null, url: page.url() };
    },
    async eval(c) { return await page.evaluate(c.expr); },
    async wait(c) {
      // Polls page.evaluate (waitForFunction would eval() in the page, which its CSP forbids).
      const deadline = Date.now() + (c.timeout || 10000);
      let last = null;
      for (;;) {
        try { last = await page.evaluate(c.expr); } catch (e) { last = "error: " + e.message; }
        if (last && !(typeof last === "string" && last.startsWith("error: "))) return last;
        if (Date.now() > deadline) throw new Error("timed out waiting for " + c.expr + " (last: " + JSON.stringify(last) + ")");
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async click(c) { await page.click(c.selector, { timeout: c.timeout || 10000 }); return null; },
    async fill(c) { await page.fill(c.selector, c.value, { timeout: c.timeout || 10000 }); return null; },
    async press(c) { await page.press(c.selector, c.key, { timeout: c.timeout || 10000 }); return null; },
    async screenshot(c) { await page.screenshot({ path: c.path, fullPage: !!c.fullPage, clip: c.clip || undefined }); return c.path; },
    async errors() { return errors.slice(); },
    async close() { await browser.close(); return null; },
  };
  process.stdout.write(JSON.stringify({ id: 0, ok: true, value: browser.version() }) + "\n");
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let c;
    try { c = JSON.parse(line); } catch (e) { continue; }
    let answer;
    try {
      const fn = ops[c.op];
      if (!fn) throw new Error("unknown op " + c.op);
      answer = { id: c.id, ok: true, value: (await fn(c)) ?? null };
    } catch (e) {
      answer = { id: c.id, ok: false, error: String(e && e.message || e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
    if (c.op === "close") break;
  }
  await browser.close().catch(() => {});
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ id: 0, ok: false, error: String(e && e.stack || e) }) + "\n");
  process.exit(1);
});
