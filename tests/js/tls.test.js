// TLS: the official client over `wss://` (and its LongPoll fallback over `https://`) against
// the example app serving a self-signed certificate, which Node trusts through
// NODE_EXTRA_CA_CERTS (run.sh sets both).

import { test } from "node:test"
import assert from "node:assert/strict"

import { Socket, LongPoll } from "phoenix"
import WebSocket from "ws"

import { connect, join, reply, unique, WAIT_MS } from "./support.js"

const base = process.env.FAWKES_TLS_URL
if (!base) {
  throw new Error("FAWKES_TLS_URL is not set: run the suite with tests/js/run.sh")
}
const SOCKET_URL = `${base.replace(/\/+$/, "").replace(/^https/, "wss")}/socket`

for (const [name, transport] of [["wss:// WebSocket", WebSocket], ["https:// LongPoll", LongPoll]]) {
  test(`${name}: the official client joins and pushes over TLS`, { timeout: 3 * WAIT_MS }, async (t) => {
    assert.match(SOCKET_URL, /^wss:\/\//)
    const s = new Socket(SOCKET_URL, { transport, timeout: WAIT_MS })
    t.after(() => s.disconnect())
    await connect(s)
    const chan = s.channel(unique("test:tls-"))
    await join(chan)
    const payload = { over: "tls", n: 1 }
    assert.deepEqual(await reply(chan.push("echo", payload)), { status: "ok", response: payload })
  })
}

test("https: the JSON API answers over TLS", { timeout: WAIT_MS }, async () => {
  const answer = await fetch(`${base}/healthz`)
  assert.equal(answer.status, 200)
})
