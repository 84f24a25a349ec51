// Binary payloads (serializer 2.0.0 over WebSocket): an ArrayBuffer pushed by the client comes
// back as the reply's ArrayBuffer, and a binary server push arrives as one.

import { test } from "node:test"
import assert from "node:assert/strict"

import { variants, connected, join, reply, next, unique, WAIT_MS } from "./support.js"

const websocketV2 = variants.find((v) => v.transport.name !== "LongPoll" && !v.opts.vsn)

function bytes(n) {
  const view = new Uint8Array(n)
  for (let i = 0; i < n; i++) view[i] = (i * 7 + 3) % 256
  return view
}

test("binary payloads round-trip as binary frames", { timeout: 3 * WAIT_MS }, async (t) => {
  const s = await connected(t, websocketV2)
  const chan = s.channel(unique("test:binary-"))
  await join(chan)

  for (const size of [0, 1, 255, 256, 70_000]) {
    const sent = bytes(size)
    const { status, response } = await reply(chan.push("binary_echo", sent.buffer))
    assert.equal(status, "ok", `size ${size}`)
    assert.ok(response instanceof ArrayBuffer, `size ${size}: the reply is binary`)
    assert.deepEqual(new Uint8Array(response), sent, `size ${size}`)
  }

  const pushed = next(chan, "pushed")
  assert.equal((await reply(chan.push("push_me", bytes(16).buffer))).status, "ok")
  const payload = await pushed
  assert.ok(payload instanceof ArrayBuffer, "the push is binary")
  assert.deepEqual(new Uint8Array(payload), bytes(16))

  // JSON to the binary event is refused, and the channel carries on.
  assert.deepEqual(await reply(chan.push("binary_echo", { not: "binary" })), {
    status: "error",
    response: { reason: "expected a binary payload" },
  })
})
