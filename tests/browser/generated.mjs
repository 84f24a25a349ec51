// Drives a live page of a service `fawkes new` and `fawkes gen live Counter` generated, in
// headless Chromium with the official phoenix_live_view client: the generated root layout
// loads the clients from /vendor/, connects, and clicks change the count. Every wait is
// bounded.
//
//   FAWKES_URL=http://127.0.0.1:4000 SCREENSHOT_DIR=/tmp node generated.mjs

import path from "node:path";
import { BASE, SHOTS, STEP_TIMEOUT_MS, assert, deadline, eventually, launch, results, step } from "./harness.mjs";

deadline(60_000, "generated live page test");

const browser = await launch();
const errors = [];
let exitCode = 0;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  page.on("response", (resp) => {
    if (resp.status() >= 400) errors.push(`${resp.status()} for ${resp.url()}`);
  });
  const count = () => page.locator("#count").textContent();

  await step("the generated page renders and its view joins over /live", async () => {
    const resp = await page.goto(`${BASE}/counter`);
    assert(resp.status() === 200, `status ${resp.status()}`);
    assert((await count()) === "0", "starts at 0");
    await eventually("the view to join", () => page.evaluate(() => !!document.querySelector(".phx-connected")), STEP_TIMEOUT_MS, 50);
  });

  await step("clicks change the count on the server", async () => {
    await page.click("#inc");
    await page.click("#inc");
    await eventually("2", async () => (await count()) === "2", STEP_TIMEOUT_MS, 50);
    await page.click("#dec");
    await eventually("1", async () => (await count()) === "1", STEP_TIMEOUT_MS, 50);
    await page.screenshot({ path: path.join(SHOTS, "generated-live.png") });
  });

  await step("the page logged no error", async () => {
    assert(errors.length === 0, errors.join("\n"));
  });
} catch {
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
}
console.log(`\n${results.passed} passed, ${results.failed} failed`);
process.exit(exitCode || (results.failed ? 1 : 0));
