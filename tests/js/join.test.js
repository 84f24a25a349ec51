// Joining and leaving: ok and error replies, the `unmatched topic` error, and a leave that
// closes the channel and stops its messages.

import { test } from "node:test"
import assert from "node:assert/strict"

import {
  variants, connected, join, reply, next, quiet, unique, until, within, createRoom, WAIT_MS,
} from "./support.js"

for (const variant of variants) {
  test(`${variant.name}: joins the lobby and a room of the database`, { timeout: 3 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    assert.deepEqual(await join(s.channel("room:lobby")), {})
    const room = await createRoom()
    const chan = s.channel(`room:${room}`)
    assert.deepEqual(await join(chan), {})
    assert.equal(chan.state, "joined")
  })

  test(`${variant.name}: a missing room answers an error reply`, { timeout: 3 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    const chan = s.channel("room:999999999")
    const { status, response } = await reply(chan.join())
    assert.equal(status, "error")
    assert.deepEqual(response, { reason: "room not found" })
    assert.equal(chan.state, "errored")
  })

  test(`${variant.name}: a topic no channel serves is an unmatched topic`, { timeout: 3 * WAIT_MS }, async (t) => {
    const s = await connected(t, variant)
    const { status, response } = await reply(s.channel(unique("nowhere:")).join())
    assert.equal(status, "error")
    assert.deepEqual(response, { reason: "unmatched topic" })
  })

  test(`${variant.name}: leaving closes the channel and stops its broadcasts`, { timeout: 3 * WAIT_MS }, async (t) => {
    const room = await createRoom()
    const topic = `room:${room}`
    const leaver = await connected(t, variant)
    const stayer = await connected(t, variant)
    const leaving = leaver.channel(topic)
    const staying = stayer.channel(topic)
    await join(leaving)
    await join(staying)

    // The client closes the channel as soon as it sends the leave; the server's answer, a
    // reply then phx_close for the join, is watched on the socket.
    const frames = []
    leaver.onMessage((msg) => { if (msg.topic === topic) frames.push(msg) })
    const closed = new Promise((resolve) => leaving.onClose(resolve))
    const joinRef = leaving.joinRef()
    const leave = leaving.leave()
    await within(closed, "onClose")
    assert.equal(leaving.state, "closed")
    assert.ok(!leaver.channels.includes(leaving), "the client forgot the channel")
    await until(() => frames.some((m) => m.event === "phx_close"), "phx_close from the server")
    const [leaveReply, close] = frames
    assert.equal(leaveReply.event, "phx_reply")
    assert.equal(leaveReply.ref, leave.ref)
    assert.deepEqual(leaveReply.payload, { status: "ok", response: {} })
    assert.equal(close.event, "phx_close")
    assert.deepEqual(close.payload, {})
    if (close.join_ref !== null) assert.equal(close.join_ref, joinRef)
    frames.length = 0

    // A message after the leave reaches the member that stayed, not the one that left.
    const body = unique("after leave ")
    const arrived = next(staying, "new_msg", (p) => p.body === body)
    const sent = await reply(staying.push("new_msg", { author: "stayer", body }))
    assert.equal(sent.status, "ok")
    await arrived
    await quiet()
    assert.deepEqual(frames, [])
  })
}
