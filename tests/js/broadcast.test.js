// Broadcasts: a message reaches every member, the sender included, across transports and
// serializers, and a message posted over HTTP reaches the room's members too.

import { test } from "node:test"
import assert from "node:assert/strict"

import {
  variants, connected, join, reply, next, unique, createRoom, request, WAIT_MS,
} from "./support.js"

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/

for (const variant of variants) {
  test(`${variant.name}: a lobby message reaches both clients`, { timeout: 3 * WAIT_MS }, async (t) => {
    const alice = (await connected(t, variant, { params: { user: "alice" } })).channel("room:lobby")
    const bob = (await connected(t, variant, { params: { user: "bob" } })).channel("room:lobby")
    await join(alice)
    await join(bob)

    const body = unique("hello from alice ")
    const mine = (p) => p.body === body
    const toAlice = next(alice, "new_msg", mine)
    const toBob = next(bob, "new_msg", mine)
    assert.deepEqual(await reply(alice.push("new_msg", { author: "alice", body })), {
      status: "ok",
      response: {},
    })
    const [a, b] = await Promise.all([toAlice, toBob])
    assert.deepEqual(a, b)
    assert.deepEqual(Object.keys(a).sort(), ["author", "body", "inserted_at"], "no id in the lobby")
    assert.equal(a.author, "alice")
    assert.match(a.inserted_at, TIMESTAMP)
  })

  test(`${variant.name}: a room message is stored and reaches the other transports`, { timeout: 3 * WAIT_MS }, async (t) => {
    const room = await createRoom()
    const topic = `room:${room}`
    const sender = (await connected(t, variant)).channel(topic)
    const others = await Promise.all(variants.map(async (v) => (await connected(t, v)).channel(topic)))
    await join(sender)
    await Promise.all(others.map(join))

    const body = unique("stored ")
    const arrivals = [sender, ...others].map((c) => next(c, "new_msg", (p) => p.body === body))
    assert.equal((await reply(sender.push("new_msg", { author: "ada", body }))).status, "ok")
    const received = await Promise.all(arrivals)
    for (const payload of received) assert.deepEqual(payload, received[0])
    const { id, inserted_at } = received[0]
    assert.ok(Number.isInteger(id), `a stored message has an id: ${JSON.stringify(received[0])}`)
    assert.deepEqual(received[0], { id, author: "ada", body, inserted_at })

    const listed = await request("GET", `/api/rooms/${room}/messages`)
    assert.equal(listed.status, 200)
    assert.deepEqual(listed.body.data.map((m) => [m.id, m.body]), [[id, body]])
  })

  test(`${variant.name}: a message posted over HTTP reaches the room`, { timeout: 3 * WAIT_MS }, async (t) => {
    const room = await createRoom()
    const other = await createRoom()
    const s = await connected(t, variant)
    const chan = s.channel(`room:${room}`)
    const otherChan = s.channel(`room:${other}`)
    await join(chan)
    await join(otherChan)
    const inOther = []
    otherChan.on("new_msg", (p) => inOther.push(p))

    const body = unique("over http ")
    const arrived = next(chan, "new_msg", (p) => p.body === body)
    const posted = await request("POST", `/api/rooms/${room}/messages`, {
      message: { author: "curl", body },
    })
    assert.equal(posted.status, 201)
    const { id, inserted_at } = posted.body.data
    assert.deepEqual(await arrived, { id, author: "curl", body, inserted_at })
    // Another room's members hear nothing: by now a wrong broadcast would have arrived.
    const marker = unique("marker ")
    const markerArrived = next(otherChan, "new_msg", (p) => p.body === marker)
    assert.equal((await reply(otherChan.push("new_msg", { author: "x", body: marker }))).status, "ok")
    await markerArrived
    assert.deepEqual(inOther.filter((p) => p.body === body), [])
  })
}
