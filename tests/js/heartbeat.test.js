// Heartbeats: with a short interval the client sends many, each is answered, and the socket
// stays connected and usable throughout.

import { test } from "node:test"
import assert from "node:assert/strict"

import { variants, connected, join, reply, until, within, unique, WAIT_MS } from "./support.js"

const INTERVAL_MS = 200
const BEATS = 6

for (const variant of variants.filter((v) => v.transport.name !== "LongPoll")) {
  test(`${variant.name}: heartbeats are answered and keep the socket open`, { timeout: 4 * WAIT_MS }, async (t) => {
    const sent = []
    const s = await connected(t, variant, {
      heartbeatIntervalMs: INTERVAL_MS,
      logger: (kind, msg) => {
        if (kind === "push" && msg.startsWith("phoenix heartbeat")) sent.push(msg)
      },
    })
    const replies = []
    s.onMessage((msg) => {
      if (msg.topic === "phoenix" && msg.event === "phx_reply") replies.push(msg)
    })
    let closed = 0
    s.onClose(() => closed++)
    s.onError(() => closed++)
    const chan = s.channel(unique("test:heartbeat-"))
    await join(chan)

    await until(() => replies.length >= BEATS, `${BEATS} heartbeat replies`, BEATS * INTERVAL_MS * 2 + WAIT_MS)
    assert.ok(sent.length >= BEATS, `the client sent them: ${sent.length}`)
    for (const r of replies) assert.deepEqual(r.payload, { status: "ok", response: {} })
    const refs = replies.map((r) => Number(r.ref))
    assert.equal(new Set(refs).size, refs.length, `one reply per heartbeat: ${refs}`)
    assert.equal(closed, 0, "the socket never closed or errored")
    assert.equal(s.isConnected(), true)
    assert.deepEqual(await reply(chan.push("echo", { after: "beats" })), {
      status: "ok",
      response: { after: "beats" },
    })
  })
}

// The client sends no heartbeats over LongPoll, but `ping` sends one and waits for its reply.
for (const variant of variants) {
  test(`${variant.name}: ping gets its heartbeat reply`, { timeout: 2 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    for (let i = 0; i < 3; i++) {
      const rtt = await within(new Promise((resolve) => assert.ok(s.ping(resolve))), "a ping reply")
      assert.ok(rtt >= 0 && rtt < WAIT_MS, `round trip ${rtt} ms`)
    }
  })
}
