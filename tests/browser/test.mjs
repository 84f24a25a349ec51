// Drives the example app in headless Chromium like two people would: both sign in through the
// login form, open the same room, chat, then watch the live dashboard move, and sign out. Also
// runs the framework's browser client (/js/fawkes.js) through the protocol cases a page relies
// on. Every wait is bounded; any failure exits non-zero. Screenshots: $SCREENSHOT_DIR/login.png,
// chat.png and dashboard.png.
//
//   FAWKES_URL=http://127.0.0.1:4000 SCREENSHOT_DIR=/tmp node test.mjs

import { mkdir } from "node:fs/promises";
import path from "node:path";
import { BASE, SHOTS, STEP_TIMEOUT_MS, assert, deadline, eventually, launch, results, step } from "./harness.mjs";

deadline(180_000, "browser test");

async function api(method, urlPath, body) {
  const resp = await fetch(`${BASE}${urlPath}`, {
    method,
    headers: { accept: "application/json", "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await resp.text();
  return { status: resp.status, json: text ? JSON.parse(text) : null };
}

const browser = await launch();

const pageErrors = [];
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(`${page.url()}: console: ${msg.text()}`);
  });
  return page;
}

// Signs in through the page's own form: a real POST /session with the form's CSRF token,
// answered by a redirect to the chat, now as `name`.
async function logIn(page, name, { screenshot } = {}) {
  await page.goto(`${BASE}/`);
  const dialog = page.locator("#name-dialog");
  await dialog.waitFor({ state: "visible" });
  assert((await page.locator('meta[name="user-token"]').count()) === 0, "an anonymous page carries no user token");
  // A blank name is refused before anything is sent.
  await page.fill("#name-input", "   ");
  await page.click("#sign-in");
  await eventually("the blank name to be refused", () => page.textContent("#name-error").then((t) => t.includes("Please enter a name")));
  assert(await dialog.isVisible(), "the form stays open on a refused name");
  await page.fill("#name-input", name);
  if (screenshot) await page.screenshot({ path: path.join(SHOTS, screenshot) });
  const [posted] = await Promise.all([
    page.waitForResponse((resp) => resp.url() === `${BASE}/session` && resp.request().method() === "POST"),
    page.click("#sign-in"),
  ]);
  assert(posted.status() === 302, `POST /session answered ${posted.status()}`);
  await page.waitForLoadState("load");
  await eventually(`${name}'s page after the login`, () => page.textContent("#user-name").then((t) => t === name));
  assert(!(await dialog.isVisible()), "the login form is closed once signed in");
  await eventually(`${name}'s socket to connect`, () => page.textContent("#status").then((t) => t === "Connected"));
  const token = await page.getAttribute('meta[name="user-token"]', "content");
  assert(token && token.split(".").length === 3, `the page carries a signed user token (${token})`);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "_fawkes_example_key");
  assert(session && session.httpOnly && session.sameSite === "Lax", `an HttpOnly, SameSite=Lax session cookie: ${JSON.stringify(session)}`);
}

async function openRoom(page, room) {
  await page.click(`.room[data-room="${room.id}"]`);
  await eventually("the room title", () => page.textContent("#room-title").then((t) => t === `# ${room.name}`));
  // The empty-room notice appears once the channel is joined and the history fetched.
  await page.locator(".messages .notice", { hasText: "No messages yet" }).waitFor();
  assert((await page.getAttribute(`.room[data-room="${room.id}"]`, "aria-current")) === "true", "the room is highlighted");
}

async function send(page, body) {
  await page.fill("#message-body", body);
  await page.click("#send");
  // The input is cleared on the server's ok reply.
  await eventually("the ok reply to new_msg", () => page.inputValue("#message-body").then((v) => v === ""));
}

async function seesMessage(page, author, body) {
  const message = page.locator(".message", { has: page.locator(".body", { hasText: body }) });
  await message.waitFor();
  const shownAuthor = await message.getAttribute("data-author");
  assert(shownAuthor === author, `"${body}" is shown with author ${author}, not ${shownAuthor}`);
}

let exitCode = 0;
try {
  await mkdir(SHOTS, { recursive: true });
  const roomName = "launch-planning";
  let room;

  await step("a room is created through the API", async () => {
    const created = await api("POST", "/api/rooms", { room: { name: roomName } });
    assert(created.status === 201, `POST /api/rooms answered ${created.status}`);
    room = { id: String(created.json.data.id), name: roomName };
    // Neighbours in the sidebar, as in any team's chat.
    for (const name of ["general", "incidents"]) {
      assert((await api("POST", "/api/rooms", { room: { name } })).status === 201, `room ${name} created`);
    }
  });

  const ada = await newPage();
  const grace = await newPage();

  await step("both people sign in through the login form and connect", async () => {
    await logIn(ada, "Ada", { screenshot: "login.png" });
    await logIn(grace, "Grace");
  });

  await step("both open the same room from the sidebar", async () => {
    await openRoom(ada, room);
    await openRoom(grace, room);
  });

  await step("both see each other in the room's online list (presence)", async () => {
    const online = (page) => page.locator("#people .person .name").allTextContents();
    for (const page of [ada, grace]) {
      await eventually("Ada and Grace online", () => online(page).then((names) => names.join(",") === "Ada,Grace"));
      assert((await page.textContent("#online-count")) === "2", "two people online");
    }
    assert((await ada.locator("#people .person.me .name").textContent()) === "Ada", "Ada is marked as herself");
  });

  await step("a message sent by Ada reaches Grace live, with Ada's name", async () => {
    await send(ada, "Hi Grace! The new build is up on staging.");
    await seesMessage(grace, "Ada", "Hi Grace! The new build is up on staging.");
    await seesMessage(ada, "Ada", "Hi Grace! The new build is up on staging.");
  });

  await step("Grace answers and Ada sees it", async () => {
    await send(grace, "Great, I'll take a look at the dashboard while it warms up.");
    await seesMessage(ada, "Grace", "Great, I'll take a look at the dashboard while it warms up.");
    await send(ada, "Latency looks flat so far. Ping me if anything spikes.");
    await seesMessage(grace, "Ada", "Latency looks flat so far. Ping me if anything spikes.");
  });

  await step("the messages were stored and a reload shows them from history", async () => {
    const { json } = await api("GET", `/api/rooms/${room.id}/messages`);
    assert(json.data.length === 3, `3 stored messages, got ${json.data.length}`);
    await grace.goto(`${BASE}/#room-${room.id}`);
    await seesMessage(grace, "Ada", "Hi Grace! The new build is up on staging.");
    assert(!(await grace.locator("#name-dialog").isVisible()), "the session keeps Grace signed in after a reload");
    assert((await grace.textContent("#user-name")) === "Grace", "still Grace after the reload");
    await ada.locator(".message").last().scrollIntoViewIfNeeded();
    await ada.screenshot({ path: path.join(SHOTS, "chat.png") });
  });

  await step("a room created from the sidebar form is listed and opened", async () => {
    await ada.fill("#new-room-name", "design-review");
    await ada.click("#new-room button[type=submit]");
    await eventually("the new room to open", () => ada.textContent("#room-title").then((t) => t === "# design-review"));
    await ada.locator(`.room[aria-current="true"]`, { hasText: "design-review" }).waitFor();
    await ada.click("#new-room button[type=submit]");
    await eventually("a blank name to be refused", () => ada.textContent("#new-room-error").then((t) => t.length > 0));
  });

  await step("the channels client speaks the protocol: errors, replies, leave, heartbeat, rejoin", async () => {
    const result = await ada.evaluate(async () => {
      const { Socket } = await import("/js/fawkes.js");
      const within = (ms, what, register) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
          register((value) => {
            clearTimeout(timer);
            resolve(value);
          });
        });
      const out = {};
      const closes = [];
      const socket = new Socket("/socket", { params: { user: "probe" }, heartbeatIntervalMs: 200 });
      socket.onClose((event) => closes.push(event.code));
      socket.connect();

      const unmatched = socket.channel("nope:1", {});
      out.unmatched = await within(3000, "join error", (done) => unmatched.join().receive("error", done));
      unmatched.leave();

      const lobby = socket.channel("room:lobby", {});
      out.joined = await within(3000, "lobby join", (done) => lobby.join().receive("ok", done));
      const firstJoinRef = lobby.joinRef();
      const broadcast = within(3000, "broadcast", (done) => lobby.on("new_msg", done));
      out.reply = await within(3000, "push reply", (done) => lobby.push("new_msg", { author: "probe", body: "ping" }).receive("ok", done));
      out.broadcast = await broadcast;
      out.invalid = await within(3000, "error reply", (done) => lobby.push("new_msg", { author: "", body: " " }).receive("error", done));

      // A few heartbeat intervals: replies keep the connection open.
      await new Promise((resolve) => setTimeout(resolve, 900));
      out.closesAfterHeartbeats = closes.length;

      // The connection drops: the socket reconnects and the channel rejoins with a fresh ref.
      const rejoined = within(5000, "rejoin", (done) => {
        const check = setInterval(() => {
          if (lobby.state === "joined" && lobby.joinRef() !== firstJoinRef) {
            clearInterval(check);
            done(true);
          }
        }, 20);
      });
      socket.conn.close(4000, "test");
      out.rejoined = await rejoined;
      out.afterRejoin = await within(3000, "push after rejoin", (done) => lobby.push("new_msg", { author: "probe", body: "again" }).receive("ok", done));

      out.left = await within(3000, "leave", (done) => lobby.leave().receive("ok", () => done(lobby.state)));
      socket.disconnect();
      return out;
    });
    assert(result.unmatched.reason === "unmatched topic", `unmatched topic: ${JSON.stringify(result.unmatched)}`);
    assert(JSON.stringify(result.joined) === "{}", `join reply ${JSON.stringify(result.joined)}`);
    assert(JSON.stringify(result.reply) === "{}", `push reply ${JSON.stringify(result.reply)}`);
    assert(result.broadcast.body === "ping" && result.broadcast.author === "probe", `broadcast ${JSON.stringify(result.broadcast)}`);
    assert(result.invalid.errors && result.invalid.errors.body, `validation errors ${JSON.stringify(result.invalid)}`);
    assert(result.closesAfterHeartbeats === 0, `heartbeats answered (closes: ${result.closesAfterHeartbeats})`);
    assert(result.rejoined === true, "rejoined after reconnect");
    assert(JSON.stringify(result.afterRejoin) === "{}", "pushes work after the rejoin");
    assert(result.left === "closed", `left: ${result.left}`);
  });

  await step("the framework's dashboard, mounted at /dev/dashboard for logged-in visitors, shows live numbers that move with traffic", async () => {
    const dash = await newPage();
    // Anonymous: sent to the login form.
    await dash.goto(`${BASE}/dev/dashboard`);
    assert(dash.url() === `${BASE}/`, `an anonymous visit is sent to the login form (${dash.url()})`);
    await logIn(dash, "Ops");
    await dash.goto(`${BASE}/dev/dashboard`);
    await eventually("the dashboard socket", () => dash.textContent("#status").then((t) => t === "Live"));
    const total = async () => {
      const sub = await dash.textContent('[data-metric="requests_per_sec"] .sub');
      const match = sub.match(/^([\d,]+) total$/);
      return match ? Number(match[1].replace(/,/g, "")) : null;
    };
    const before = await eventually("a first sample", total);
    const updatedBefore = await dash.textContent("#updated");
    for (let i = 0; i < 40; i += 1) {
      const { status } = await api("GET", "/api/rooms");
      assert(status === 200, `GET /api/rooms answered ${status}`);
    }
    const after = await eventually("the requests total to grow", async () => {
      const now = await total();
      return now !== null && now >= before + 40 ? now : null;
    }, 5000);
    const rps = Number((await dash.textContent('[data-metric="requests_per_sec"] .value')).replace(/[^\d.]/g, ""));
    assert(rps > 0, `requests per second is positive after traffic (${rps})`);
    assert((await dash.textContent("#updated")) !== updatedBefore, "the update time moves");
    const memory = Number((await dash.textContent('[data-metric="memory_mb"] .value')).replace(/[^\d.]/g, ""));
    assert(memory > 1, `memory is shown (${memory} MB)`);
    const sockets = Number(await dash.textContent('[data-metric="sockets"] .value'));
    assert(sockets >= 3, `the open sockets are counted (${sockets})`);
    const lines = await dash.locator(".chart svg polyline").count();
    assert(lines >= 10, `the charts are drawn (${lines} lines)`);
    console.log(`  requests total ${before} -> ${after}, ${rps} req/s, ${memory} MB, ${sockets} sockets`);
    // The cluster: this node, with the presences of the people in rooms (Ada and Grace at least).
    const node = await dash.textContent("#node");
    const presences = await eventually("this node's presences", async () => {
      const cell = dash.locator(`#nodes tr[data-node="${node}"] td.num`);
      if ((await cell.count()) === 0) return null;
      const n = Number((await cell.textContent()).replace(/,/g, ""));
      return n >= 2 ? n : null;
    });
    assert(await dash.locator(`#nodes tr[data-node="${node}"] td.local`).count() === 1, "this node is marked as local");
    assert((await dash.textContent('#pubsub dd[data-key="Adapter"]')) === "local", "the pubsub adapter is named");
    // The supervision tree: the endpoint's supervisor, the dashboard's worker, and the
    // connections, sockets and channels counted by name.
    await eventually("the supervision tree", () => dash.locator("#tree [data-supervisor]").count().then((n) => n >= 1));
    assert(await dash.locator('#tree [data-child="dashboard"]').count() === 1, "the dashboard's worker is in the tree");
    const temporaries = await dash.locator("#tree [data-temporary]").evaluateAll((nodes) => nodes.map((n) => n.dataset.temporary));
    for (const name of ["connection", "socket", "channel"]) {
      assert(temporaries.includes(name), `the tree counts ${name}s (${temporaries})`);
    }
    console.log(`  node ${node}: ${presences} presences, temporaries ${temporaries.join(", ")}`);
    // Two more samples, so the charts show the burst and what follows it.
    for (let i = 0; i < 2; i += 1) {
      const seen = await dash.textContent("#updated");
      await eventually("the next sample", () => dash.textContent("#updated").then((t) => t !== seen), 5000);
    }
    await dash.screenshot({ path: path.join(SHOTS, "dashboard.png"), fullPage: true });
  });

  await step("a signed-in message carries the session's name, whatever the script claims", async () => {
    const body = "Signed in as Ada, claiming to be Grace.";
    // A second socket on Ada's page, with her token, pushing a message that names Grace.
    const reply = await ada.evaluate(async ({ topic, text }) => {
      const { Socket } = await import("/js/fawkes.js");
      const token = document.querySelector('meta[name="user-token"]').content;
      const socket = new Socket("/socket", { params: { token } });
      socket.connect();
      try {
        const channel = socket.channel(topic, {});
        await new Promise((resolve, reject) => channel.join().receive("ok", resolve).receive("error", reject).receive("timeout", reject));
        return await new Promise((resolve) => {
          channel.push("new_msg", { author: "Grace", body: text }).receive("ok", () => resolve("ok")).receive("error", resolve).receive("timeout", () => resolve("timeout"));
        });
      } finally {
        socket.disconnect();
      }
    }, { topic: `room:${room.id}`, text: body });
    assert(reply === "ok", `the push was accepted (${JSON.stringify(reply)})`);
    await seesMessage(grace, "Ada", body);
  });

  await step("logging out returns to the sign-in form", async () => {
    const [posted] = await Promise.all([
      ada.waitForResponse((resp) => resp.url() === `${BASE}/session/delete` && resp.request().method() === "POST"),
      ada.click("#logout"),
    ]);
    assert(posted.status() === 302, `POST /session/delete answered ${posted.status()}`);
    await ada.waitForLoadState("load");
    await ada.locator("#name-dialog").waitFor({ state: "visible" });
    assert((await ada.locator('meta[name="user-token"]').count()) === 0, "no user token once logged out");
    assert(await ada.locator("#user-chip").isHidden(), "no name in the top bar once logged out");
  });

  await step("no page raised an error", async () => {
    assert(pageErrors.length === 0, `page errors:\n${pageErrors.join("\n")}`);
  });
} catch {
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
}
console.log(`\n${results.passed} passed, ${results.failed} failed`);
console.log(`screenshots: ${["login.png", "chat.png", "dashboard.png"].map((f) => path.join(SHOTS, f)).join(", ")}`);
process.exit(exitCode || (results.failed ? 1 : 0));
