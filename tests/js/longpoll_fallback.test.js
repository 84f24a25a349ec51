// `longPollFallbackMs`: when the WebSocket cannot connect, the client falls back to LongPoll
// on the same socket URL, joins, and works.

import { test } from "node:test"
import assert from "node:assert/strict"

import { LongPoll } from "phoenix"
import WebSocket from "ws"

import { socket, connect, join, reply, unique, WAIT_MS } from "./support.js"

// A WebSocket whose upgrade the server answers with 404, as behind a proxy that does not pass
// upgrades through.
class UnreachableWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url.replace("/socket/websocket", "/socket/unreachable"), protocols)
  }
}

test("falls back to LongPoll when the WebSocket fails", { timeout: 3 * WAIT_MS }, async (t) => {
  const logs = []
  const s = socket(t, { transport: UnreachableWebSocket, opts: {} }, {
    longPollFallbackMs: WAIT_MS,
    logger: (kind, msg) => logs.push(`${kind}: ${msg}`),
  })
  await connect(s)
  assert.equal(s.transport, LongPoll, `fell back: ${logs.join("; ")}`)
  assert.ok(logs.some((l) => l.startsWith("transport: falling back to LongPoll")), logs.join("; "))

  const chan = s.channel(unique("test:fallback-"))
  await join(chan)
  assert.deepEqual(await reply(chan.push("echo", { via: "fallback" })), {
    status: "ok",
    response: { via: "fallback" },
  })
})
