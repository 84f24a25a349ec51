// What every test file shares: the server's address, the client variants, and promise
// wrappers around the official client's callbacks, each bounded by a deadline.
//
// The client is used as shipped. Node has no WebSocket before version 22, so the `ws`
// package is passed as the transport, the way the client's `transport` option allows; its
// LongPoll uses `fetch` and `AbortController`, which Node has.

import { Socket, LongPoll } from "phoenix"
import WebSocket from "ws"

const base = process.env.FAWKES_URL
if (!base) {
  throw new Error("FAWKES_URL is not set: run the suite with tests/js/run.sh")
}

/** The app's base URL, such as `http://127.0.0.1:4321`. */
export const HTTP_URL = base.replace(/\/+$/, "")
/** Where the socket is mounted, as the client wants it. */
export const SOCKET_URL = `${HTTP_URL.replace(/^http/, "ws")}/socket`

/** The second node's socket, when the suite runs against two nodes sharing Redis (run.sh). */
export const SOCKET_URL_B = process.env.FAWKES_URL_B
  ? `${process.env.FAWKES_URL_B.replace(/\/+$/, "").replace(/^http/, "ws")}/socket`
  : null

/** How long any single wait lasts before the test fails with a message saying what. */
export const WAIT_MS = 5000

/**
 * Serializer 1.0.0 through the client's `encode`/`decode` options: JSON objects instead of
 * arrays. The client itself speaks 2.0.0 only; these options are how it talks to V1 servers.
 * LongPoll ignores them (it always uses the built-in serializer), so V1 over LongPoll is
 * covered with raw requests in serializer_v1.test.js.
 */
export const v1Codec = {
  vsn: "1.0.0",
  encode(msg, callback) {
    const { join_ref, ref, topic, event, payload } = msg
    return callback(JSON.stringify({ topic, event, payload, ref, join_ref }))
  },
  decode(raw, callback) {
    const { topic, event, payload, ref } = JSON.parse(raw)
    // V1 frames carry no join_ref, but a phx_close or phx_error names its join in `ref`.
    // Passing it on lets the client drop the close of a join it already replaced.
    const lifecycle = event === "phx_close" || event === "phx_error"
    return callback({ join_ref: lifecycle ? ref : null, ref: ref ?? null, topic, event, payload })
  },
}

/** The ways a client can talk to the server; most scenarios run over each. */
export const variants = [
  { name: "WebSocket, serializer 2.0.0", transport: WebSocket, opts: {} },
  { name: "WebSocket, serializer 1.0.0", transport: WebSocket, opts: v1Codec },
  { name: "LongPoll, serializer 2.0.0", transport: LongPoll, opts: {} },
]

/** `promise`, or a rejection naming `what` after `ms`. */
export function within(promise, what, ms = WAIT_MS) {
  let timer
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Polls `condition` until it holds, failing after `ms`. */
export async function until(condition, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Resolves after `ms`: only for checking that something does NOT happen. */
export function quiet(ms = 300) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** What the test channel's join replies to a socket connected without params. */
export const ANONYMOUS = Object.freeze({ user: "anonymous", socket_id: null, auth_token: null })

/** A name no other test uses, for topics and message bodies. */
export function unique(prefix) {
  return `${prefix}${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}

/**
 * A socket of `variant`, not yet connected, disconnected when the test ends. Short rejoin and
 * reconnect delays keep recovery tests fast, and matter beyond that: a test file's process
 * only exits once the client's pending timers have fired, so a long rejoin delay (or a push
 * that never gets a reply, with the default timeout) would hold the whole run.
 */
export function socket(t, variant, opts = {}) {
  return socketAt(t, SOCKET_URL, variant, opts)
}

/** Like `socket`, for the node whose socket is at `url`. */
export function socketAt(t, url, variant, opts = {}) {
  const s = new Socket(url, {
    transport: variant.transport,
    timeout: WAIT_MS,
    rejoinAfterMs: () => 50,
    reconnectAfterMs: () => 50,
    ...variant.opts,
    ...opts,
  })
  t.after(() => s.disconnect())
  return s
}

/** Connects `s` and resolves once it is open. */
export function connect(s) {
  const opened = new Promise((resolve) => s.onOpen(resolve))
  s.connect()
  return within(opened, `the socket to open (${s.transportName(s.transport)})`)
}

/** A connected socket of `variant`. */
export async function connected(t, variant, opts = {}) {
  const s = socket(t, variant, opts)
  await connect(s)
  return s
}

/** `{status, response}` of a push (or join) once the server replied; rejects on timeout. */
export function reply(push, what = `a reply to ${push.event}`) {
  return within(
    new Promise((resolve, reject) => {
      push
        .receive("ok", (response) => resolve({ status: "ok", response }))
        .receive("error", (response) => resolve({ status: "error", response }))
        .receive("timeout", () => reject(new Error(`the client timed out waiting for ${what}`)))
    }),
    what,
  )
}

/** Joins `channel` and resolves with the reply's response; rejects on an error reply. */
export async function join(channel) {
  const { status, response } = await reply(channel.join(), `the join of ${channel.topic}`)
  if (status !== "ok") {
    throw new Error(`joining ${channel.topic} failed: ${JSON.stringify(response)}`)
  }
  return response
}

/** The next `event` on `channel` whose payload satisfies `matches`. */
export function next(channel, event, matches = () => true) {
  return within(
    new Promise((resolve) => {
      const ref = channel.on(event, (payload) => {
        if (!matches(payload)) return
        channel.off(event, ref)
        resolve(payload)
      })
    }),
    `${event} on ${channel.topic}`,
  )
}

/** Sends a JSON request to the app; resolves with `{status, body}`. */
export async function request(method, path, body) {
  const resp = await within(
    fetch(`${HTTP_URL}${path}`, {
      method,
      headers: { "content-type": "application/json", accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
    `${method} ${path}`,
  )
  const text = await resp.text()
  return { status: resp.status, body: text ? JSON.parse(text) : null }
}

/** The `content` of the page's `<meta name="{name}">`, or null. */
function meta(html, name) {
  const found = html.match(new RegExp(`<meta name="${name}" content="([^"]*)">`))
  return found ? found[1] : null
}

/**
 * Logs in as `name` through the chat page's form, as a browser would (the session cookie
 * carried by hand, the CSRF token read from the page), and resolves with the user token the
 * logged-in page hands its socket.
 */
export async function logIn(name) {
  const get = async (cookie) => {
    const resp = await within(fetch(`${HTTP_URL}/`, { headers: { accept: "text/html", cookie } }), "GET /")
    return { resp, html: await resp.text() }
  }
  const cookieOf = (resp, fallback) => {
    const set = resp.headers.getSetCookie().find((c) => c.startsWith("_fawkes_example_key="))
    return set ? set.split(";")[0] : fallback
  }
  const first = await get("")
  let cookie = cookieOf(first.resp, "")
  const login = await within(
    fetch(`${HTTP_URL}/session`, {
      method: "POST",
      redirect: "manual",
      headers: { accept: "text/html", cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ name, _csrf_token: meta(first.html, "csrf-token") }),
    }),
    "POST /session",
  )
  if (login.status !== 302) throw new Error(`logging in as ${name} answered ${login.status}`)
  cookie = cookieOf(login, cookie)
  const home = await get(cookie)
  const token = meta(home.html, "user-token")
  if (!token) throw new Error(`the page after logging in as ${name} carries no user token`)
  return token
}

/** Creates a room through the API and returns its id. */
export async function createRoom(name = unique("room-")) {
  const { status, body } = await request("POST", "/api/rooms", { room: { name } })
  if (status !== 201) throw new Error(`creating a room answered ${status}: ${JSON.stringify(body)}`)
  return body.data.id
}

/**
 * A raw WebSocket to the socket, for frames the official client cannot send: `query` is the
 * connect query string (`vsn=2.0.0`, or none for serializer 1.0.0). Closed when the test ends.
 */
export async function raw(t, query = "") {
  const { default: WebSocket } = await import("ws")
  const ws = new WebSocket(`${SOCKET_URL}/websocket${query ? `?${query}` : ""}`)
  t.after(() => ws.terminate())
  const inbox = []
  let wake = () => {}
  ws.on("message", (data, isBinary) => {
    inbox.push(isBinary ? data : JSON.parse(data.toString()))
    wake()
  })
  await within(new Promise((resolve, reject) => {
    ws.once("open", resolve)
    ws.once("error", reject)
  }), "the raw WebSocket to open")
  return {
    send(frame) {
      ws.send(JSON.stringify(frame))
    },
    /** The next frame satisfying `matches`, frames before it kept for later calls. */
    async next(matches = () => true, what = "a frame") {
      const deadline = Date.now() + WAIT_MS
      for (;;) {
        const i = inbox.findIndex(matches)
        if (i >= 0) return inbox.splice(i, 1)[0]
        const left = deadline - Date.now()
        if (left <= 0) {
          throw new Error(`timed out waiting for ${what}; received: ${JSON.stringify(inbox)}`)
        }
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, left)
          wake = () => { clearTimeout(timer); resolve() }
        })
      }
    },
    /** Every frame received and not yet taken. */
    pending: inbox,
  }
}
