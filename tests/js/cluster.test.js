// Two nodes sharing one Redis, as replicas behind a load balancer: the official client's
// `Presence` shows the same list whichever node a client is connected to, and a message posted
// on one node reaches the members connected to the other.

import { test } from "node:test"
import assert from "node:assert/strict"
import { Presence } from "phoenix"

import {
  variants, socketAt, connect, join, reply, next, unique, until, SOCKET_URL, SOCKET_URL_B, WAIT_MS,
} from "./support.js"

if (!SOCKET_URL_B) {
  throw new Error("FAWKES_URL_B is not set: run the suite with tests/js/run.sh")
}

// Presence lists and Redis hops take a little longer than one node's replies.
const CLUSTER_WAIT_MS = 3 * WAIT_MS

for (const variant of variants) {
  test(`${variant.name}: one presence list across nodes, and broadcasts cross them`, { timeout: 6 * WAIT_MS }, async (t) => {
    // The lobby is shared with the other test files running at the same time: only these two
    // users are looked at.
    const alice = unique("alice-")
    const bob = unique("bob-")
    const onA = socketAt(t, SOCKET_URL, variant, { params: { user: alice } })
    const onB = socketAt(t, SOCKET_URL_B, variant, { params: { user: bob } })
    await connect(onA)
    await connect(onB)
    const channelA = onA.channel("room:lobby")
    const channelB = onB.channel("room:lobby")
    const presenceA = new Presence(channelA)
    const presenceB = new Presence(channelB)
    const ours = (presence) => presence.list((id) => id).filter((id) => id === alice || id === bob).sort()
    await join(channelA)
    await join(channelB)

    await until(
      () => ours(presenceA).length === 2 && ours(presenceB).length === 2,
      "both nodes to list alice and bob",
      CLUSTER_WAIT_MS,
    )
    assert.deepEqual(ours(presenceA), [alice, bob].sort())
    const metas = (presence, id) => presence.list((key, { metas }) => key === id && metas).find(Boolean)
    // The same entry, with the same phx_ref, whichever node tells it.
    assert.deepEqual(metas(presenceA, bob), metas(presenceB, bob))
    assert.deepEqual(metas(presenceA, alice), metas(presenceB, alice))
    assert.equal(metas(presenceA, bob).length, 1)
    assert.equal(typeof metas(presenceA, bob)[0].online_at, "number")

    // Posted on A, delivered on B.
    const body = unique("across nodes ")
    const onOtherNode = next(channelB, "new_msg", (p) => p.body === body)
    assert.equal((await reply(channelA.push("new_msg", { author: alice, body }))).status, "ok")
    assert.equal((await onOtherNode).author, alice)

    // bob leaves on B; A's list drops him.
    let left = null
    presenceA.onLeave((id, current, leftPres) => {
      if (id === bob) left = { current, leftPres }
    })
    await reply(channelB.leave())
    await until(() => !ours(presenceA).includes(bob), "bob to leave node A's list", CLUSTER_WAIT_MS)
    assert.ok(left, "onLeave fired for bob")
    assert.equal(left.current.metas.length, 0)
  })
}
