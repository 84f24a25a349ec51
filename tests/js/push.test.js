// Pushing: replies matched to their push (ok and error), and server pushes to one client.

import { test } from "node:test"
import assert from "node:assert/strict"

import { variants, connected, join, reply, next, unique, WAIT_MS } from "./support.js"

for (const variant of variants) {
  test(`${variant.name}: pushes get their own replies`, { timeout: 3 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    const chan = s.channel(unique("test:push-"))
    await join(chan)
    // Sent back to back: each reply must reach its own push.
    const payloads = [1, 2, 3, 4, 5].map((n) => ({ n, nested: { list: [n, "x"], ok: true } }))
    const replies = await Promise.all(payloads.map((p) => reply(chan.push("echo", p))))
    assert.deepEqual(replies, payloads.map((response) => ({ status: "ok", response })))

    const unknown = await reply(chan.push("no_such_event", {}))
    assert.deepEqual(unknown, { status: "error", response: { reason: "unknown event" } })
  })

  test(`${variant.name}: a blank message is an error reply`, { timeout: 3 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    const chan = s.channel("room:lobby")
    await join(chan)
    const blank = await reply(chan.push("new_msg", { author: "ada", body: "   " }))
    assert.deepEqual(blank, { status: "error", response: { errors: { body: ["can't be blank"] } } })
    const ok = await reply(chan.push("new_msg", { author: "ada", body: unique("fine ") }))
    assert.deepEqual(ok, { status: "ok", response: {} })
  })

  test(`${variant.name}: the server pushes to this client only`, { timeout: 3 * WAIT_MS }, async (t) => {
    const topic = unique("test:push-me-")
    const me = await connected(t, variant)
    const other = await connected(t, variant)
    const mine = me.channel(topic)
    const theirs = other.channel(topic)
    await join(mine)
    await join(theirs)
    const seenByOther = []
    theirs.on("pushed", (payload) => seenByOther.push(payload))

    const pushed = next(mine, "pushed")
    const { status } = await reply(mine.push("push_me", { for: "me" }))
    assert.equal(status, "ok")
    assert.deepEqual(await pushed, { for: "me" })
    // The other member is still there and answering, and got nothing.
    assert.equal((await reply(theirs.push("echo", {}))).status, "ok")
    assert.deepEqual(seenByOther, [])
  })
}
