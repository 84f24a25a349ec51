// A channel that crashes: the client gets phx_error, rejoins on its own, and the rejoined
// channel works; the socket and its other channels are untouched.

import { test } from "node:test"
import assert from "node:assert/strict"

import { variants, connected, join, reply, until, unique, WAIT_MS } from "./support.js"

for (const variant of variants) {
  test(`${variant.name}: the client rejoins after a crash`, { timeout: 3 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    const frames = []
    s.onMessage((msg) => frames.push(msg))
    let socketTroubles = 0
    s.onClose(() => socketTroubles++)
    s.onError(() => socketTroubles++)

    const bystander = s.channel(unique("test:bystander-"))
    await join(bystander)
    const topic = unique("test:crash-")
    const chan = s.channel(topic)
    let joins = 0
    chan.joinPush.receive("ok", () => joins++)
    const errors = []
    chan.onError((reason) => errors.push(reason))
    await join(chan)
    const firstJoinRef = chan.joinRef()
    assert.equal(joins, 1)

    // No reply comes to a crashing push; its timeout is short so no timer outlives the test.
    chan.push("crash", {}, 500)
    await until(() => errors.length >= 1, "the channel error")
    const crash = frames.find((m) => m.topic === topic && m.event === "phx_error")
    assert.ok(crash, "the server sent phx_error")
    if (crash.join_ref !== null) assert.equal(crash.join_ref, firstJoinRef)

    await until(() => joins >= 2 && chan.state === "joined", "the automatic rejoin")
    assert.notEqual(chan.joinRef(), firstJoinRef, "the rejoin is a new join")
    assert.deepEqual(await reply(chan.push("echo", { alive: true })), {
      status: "ok",
      response: { alive: true },
    })
    assert.equal((await reply(bystander.push("echo", {}))).status, "ok")
    assert.equal(socketTroubles, 0, "the socket itself never closed")
    assert.equal(s.isConnected(), true)
  })
}
