// Drives the example app's live pages in headless Chromium with the official
// phoenix_live_view client (from npm, served by the app under /vendor/): clicks change the
// count through diffs of a few bytes, a patch link changes the step and the URL without a
// reload, a live navigation mounts the rooms view without a reload (a marker set on `window`
// survives both), a room name full of markup shows as text, the room form validates as it is
// typed and saves, and a room created over the HTTP API appears in two open pages. Every wait
// is bounded.
//
//   FAWKES_URL=http://127.0.0.1:4000 SCREENSHOT_DIR=/tmp node live.mjs

import path from "node:path";
import { BASE, SHOTS, STEP_TIMEOUT_MS, assert, deadline, eventually as poll, launch, results, step } from "./harness.mjs";

deadline(120_000, "live test");

// Live pages answer in milliseconds: poll often.
const eventually = (what, probe, ms = STEP_TIMEOUT_MS) => poll(what, probe, ms, 50);

const browser = await launch();
const errors = [];
const frames = [];
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  // What the client sends and receives on the live socket, to weigh the diffs.
  page.on("websocket", (ws) => {
    if (!ws.url().includes("/live/websocket")) return;
    ws.on("framereceived", (f) => frames.push({ dir: "in", data: String(f.payload) }));
    ws.on("framesent", (f) => frames.push({ dir: "out", data: String(f.payload) }));
  });

  const text = (selector) => page.locator(selector).textContent();
  const connected = () =>
    eventually("the view to join", () => page.evaluate(() => !!document.querySelector(".phx-connected")));

  await step("the counter renders over HTTP and joins over the live socket", async () => {
    const resp = await page.goto(`${BASE}/live/counter`);
    assert(resp.status() === 200, `status ${resp.status()}`);
    assert((await text("#count")) === "0", "starts at 0");
    await connected();
    // A marker that only survives if the page is never reloaded.
    await page.evaluate(() => {
      window.__marker = "kept";
    });
  });

  await step("clicks change the count through small diffs", async () => {
    const before = frames.length;
    await page.click("#inc");
    await eventually("1", async () => (await text("#count")) === "1");
    await page.click("#inc");
    await page.click("#inc");
    await eventually("3", async () => (await text("#count")) === "3");
    await page.click("#dec");
    await eventually("2", async () => (await text("#count")) === "2");
    const replies = frames
      .slice(before)
      .filter((f) => f.dir === "in" && f.data.includes('"phx_reply"'));
    assert(replies.length >= 4, `four replies, got ${replies.length}`);
    for (const reply of replies) {
      // `[join_ref, ref, topic, "phx_reply", {"status":"ok","response":{"diff":{"0":"2"}}}]`
      assert(reply.data.length < 120, `a diff of a few bytes, not the page: ${reply.data}`);
      assert(!reply.data.includes("<button"), `no statics in a diff: ${reply.data}`);
    }
  });

  await step("a patch link changes the step and the URL without a reload", async () => {
    await page.click("#step-5");
    await eventually("step 5", async () => (await text("#step")) === "5");
    assert(new URL(page.url()).search === "?step=5", `url ${page.url()}`);
    await page.click("#inc");
    await eventually("7", async () => (await text("#count")) === "7");
    assert((await page.evaluate(() => window.__marker)) === "kept", "the page was reloaded");
    await page.screenshot({ path: path.join(SHOTS, "live-counter.png") });
  });

  await step("back goes to the previous URL's params, still without a reload", async () => {
    await page.goBack();
    await eventually("step 1", async () => (await text("#step")) === "1");
    assert((await text("#count")) === "7", "the count is the view's, kept");
    assert((await page.evaluate(() => window.__marker)) === "kept", "the page was reloaded");
  });

  await step("a live navigation mounts the rooms view without a reload", async () => {
    const name = `<img src=x onerror="window.__xss=1">live-${Date.now()}`;
    const created = await fetch(`${BASE}/api/rooms`, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify({ room: { name } }),
    });
    assert(created.status === 201, `room created: ${created.status}`);
    await page.click("#to-rooms");
    await eventually("the rooms", () => page.evaluate(() => !!document.querySelector("#rooms")));
    assert(new URL(page.url()).pathname === "/live/rooms", `url ${page.url()}`);
    assert((await page.evaluate(() => window.__marker)) === "kept", "the page was reloaded");
    const items = await page.locator("#rooms li").allTextContents();
    assert(items.includes(name), `the new room is listed as text: ${JSON.stringify(items)}`);
    assert((await page.evaluate(() => window.__xss)) === undefined, "markup in a name ran");
    await page.screenshot({ path: path.join(SHOTS, "live-rooms.png") });
  });

  await step("the form shows the changeset's errors as the name is typed", async () => {
    const form = page.locator("#room-form");
    await page.fill("#room-name", "x");
    await page.fill("#room-name", "");
    await eventually("can't be blank", async () => (await form.textContent()).includes("can't be blank"));
    await page.fill("#room-name", "y".repeat(101));
    await eventually("too long", async () =>
      (await form.textContent()).includes("should be at most 100 character(s)"),
    );
    await page.fill("#room-name", "fine");
    await eventually("no error", async () => (await page.locator(".room-error").count()) === 0);
  });

  await step("saving the form adds the room", async () => {
    const name = `saved-${Date.now()}`;
    await page.fill("#room-name", name);
    await page.click("#room-form button[type=submit]");
    await eventually("the saved room", async () =>
      (await page.locator("#rooms li").allTextContents()).includes(name),
    );
    const listed = await fetch(`${BASE}/api/rooms`).then((r) => r.json());
    assert(listed.data.some((room) => room.name === name), "the room is in the database");
    // The view's flash says so; a click on it clears it (phx-click="lv:clear-flash").
    await eventually("the flash", async () =>
      (await page.locator("#flash-info").count()) === 1 &&
      (await text("#flash-info")) === `Room ${name} created.`,
    );
    await page.click("#flash-info");
    await eventually("the flash cleared", async () => (await page.locator("#flash-info").count()) === 0);
  });

  await step("a room created over the API appears in two open pages", async () => {
    const other = await browser.newPage();
    other.setDefaultTimeout(STEP_TIMEOUT_MS);
    other.on("pageerror", (err) => errors.push(String(err)));
    await other.goto(`${BASE}/live/rooms`);
    await eventually("the second page to join", () =>
      other.evaluate(() => !!document.querySelector(".phx-connected")),
    );
    const name = `api-${Date.now()}`;
    const created = await fetch(`${BASE}/api/rooms`, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify({ room: { name } }),
    });
    assert(created.status === 201, `room created: ${created.status}`);
    for (const [label, p] of [["first", page], ["second", other]]) {
      await eventually(`the ${label} page to list it`, async () =>
        (await p.locator("#rooms li").allTextContents()).includes(name),
      );
    }
    assert((await page.evaluate(() => window.__marker)) === "kept", "the page was reloaded");
    await other.close();
  });

  await step("a flash put before a live navigation shows on the next view", async () => {
    await page.goto(`${BASE}/live/counter`);
    await connected();
    await page.evaluate(() => {
      window.__marker = "again";
    });
    await page.click("#inc");
    await eventually("1", async () => (await text("#count")) === "1");
    await page.click("#done");
    await eventually("the rooms", () => page.evaluate(() => !!document.querySelector("#rooms")));
    assert(new URL(page.url()).pathname === "/live/rooms", `url ${page.url()}`);
    assert((await page.evaluate(() => window.__marker)) === "again", "the page was reloaded");
    await eventually("the flash", async () =>
      (await page.locator("#flash-info").count()) === 1 &&
      (await text("#flash-info")) === "You counted to 1.",
    );
  });

  await step("no page raised an error", async () => {
    assert(errors.length === 0, errors.join("\n"));
  });
} finally {
  await browser.close();
  console.log(`\n${results.passed} passed, ${results.failed} failed`);
  process.exitCode = results.failed ? 1 : process.exitCode;
}
