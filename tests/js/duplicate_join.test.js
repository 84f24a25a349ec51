// Joining a topic twice on one socket: the official client closes the first channel before
// the second joins, and only the second receives the topic's messages afterwards.

import { test } from "node:test"
import assert from "node:assert/strict"

import {
  variants, connected, join, reply, next, within, unique, raw, quiet, ANONYMOUS, WAIT_MS,
} from "./support.js"

for (const variant of variants) {
  test(`${variant.name}: a second channel for a topic replaces the first`, { timeout: 3 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    const topic = unique("test:dup-")
    const first = s.channel(topic)
    await join(first)
    const firstClosed = new Promise((resolve) => first.onClose(resolve))
    const firstPushed = []
    first.on("pushed", (p) => firstPushed.push(p))

    const second = s.channel(topic)
    await join(second)
    await within(firstClosed, "the first channel to close")
    assert.equal(first.state, "closed")
    assert.equal(second.state, "joined")
    assert.deepEqual(s.channels.filter((c) => c.topic === topic), [second])

    const pushed = next(second, "pushed")
    assert.equal((await reply(second.push("push_me", { to: "second" }))).status, "ok")
    assert.deepEqual(await pushed, { to: "second" })
    assert.deepEqual(firstPushed, [])
    assert.deepEqual(await reply(second.push("echo", { still: "joined" })), {
      status: "ok",
      response: { still: "joined" },
    })
  })
}

// The server's side of a duplicate join, which the official client never sends (it leaves
// first): the old channel is stopped, and both the new join's reply and a phx_close carrying
// the OLD join_ref reach the client.
test("raw V2: a join of a joined topic stops the old channel", { timeout: 3 * WAIT_MS }, async (t) => {
  const ws = await raw(t, "vsn=2.0.0")
  const topic = unique("test:raw-dup-")
  ws.send(["1", "1", topic, "phx_join", {}])
  assert.equal((await ws.next((f) => f[1] === "1"))[4].status, "ok")
  ws.send(["2", "2", topic, "phx_join", {}])
  const joined = await ws.next((f) => f[1] === "2" && f[3] === "phx_reply")
  assert.deepEqual(joined, ["2", "2", topic, "phx_reply", { status: "ok", response: ANONYMOUS }])
  assert.deepEqual(await ws.next((f) => f[3] === "phx_close"), ["1", "1", topic, "phx_close", {}])

  // Messages for the old join are ignored; the new one answers.
  ws.send(["1", "3", topic, "echo", { stale: true }])
  ws.send(["2", "4", topic, "echo", { fresh: true }])
  assert.deepEqual(await ws.next((f) => f[1] === "4"), ["2", "4", topic, "phx_reply", { status: "ok", response: { fresh: true } }])
  await quiet()
  assert.deepEqual(ws.pending.filter((f) => f[1] === "3"), [], "no reply to the stale join_ref")
})
