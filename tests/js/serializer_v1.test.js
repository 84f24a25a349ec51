// Serializer 1.0.0 frame by frame, as Phoenix encodes them: JSON objects with exactly
// `topic`, `event`, `payload` and `ref`. The official client speaks 2.0.0, so these frames
// are sent by hand, over WebSocket (with `vsn` absent, the 1.0.0 default, and explicit) and
// over LongPoll.

import { test } from "node:test"
import assert from "node:assert/strict"

import { raw, unique, within, ANONYMOUS, HTTP_URL, WAIT_MS } from "./support.js"

for (const query of ["", "vsn=1.0.0"]) {
  test(`WebSocket ${query || "without vsn"}: V1 frames for every exchange`, { timeout: 3 * WAIT_MS }, async (t) => {
    const ws = await raw(t, query)
    const reply = (topic, ref, status, response) => ({
      topic, event: "phx_reply", payload: { status, response }, ref,
    })
    const byRef = (ref) => (f) => f.ref === ref

    ws.send({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "1" })
    assert.deepEqual(await ws.next(byRef("1")), reply("phoenix", "1", "ok", {}))

    // join_ref is optional inbound in V1.
    ws.send({ topic: "room:lobby", event: "phx_join", payload: {}, ref: "2" })
    assert.deepEqual(await ws.next(byRef("2")), reply("room:lobby", "2", "ok", {}))

    const body = unique("v1 ")
    ws.send({ topic: "room:lobby", event: "new_msg", payload: { author: "v1", body }, ref: "3" })
    assert.deepEqual(await ws.next(byRef("3")), reply("room:lobby", "3", "ok", {}))
    const broadcast = await ws.next((f) => f.event === "new_msg" && f.payload.body === body)
    assert.deepEqual(Object.keys(broadcast).sort(), ["event", "payload", "ref", "topic"])
    assert.equal(broadcast.ref, null)
    assert.equal(broadcast.topic, "room:lobby")

    ws.send({ topic: "room:lobby", event: "new_msg", payload: { author: "", body }, ref: "4" })
    assert.deepEqual(
      await ws.next(byRef("4")),
      reply("room:lobby", "4", "error", { errors: { author: ["can't be blank"] } }),
    )

    const topic = unique("test:v1-")
    ws.send({ topic, event: "phx_join", payload: {}, ref: "5", join_ref: "5" })
    assert.deepEqual(await ws.next(byRef("5")), reply(topic, "5", "ok", ANONYMOUS))
    ws.send({ topic, event: "push_me", payload: { n: 1 }, ref: "6", join_ref: "5" })
    const pushed = await ws.next((f) => f.event === "pushed")
    assert.deepEqual(pushed, { topic, event: "pushed", payload: { n: 1 }, ref: null })
    assert.deepEqual(await ws.next(byRef("6")), reply(topic, "6", "ok", {}))

    // A crash is phx_error whose ref is the join's.
    ws.send({ topic, event: "crash", payload: {}, ref: "7", join_ref: "5" })
    const crashed = await ws.next((f) => f.event === "phx_error")
    assert.equal(crashed.topic, topic)
    assert.equal(crashed.ref, "5")

    ws.send({ topic, event: "phx_join", payload: {}, ref: "8", join_ref: "8" })
    assert.equal((await ws.next(byRef("8"))).payload.status, "ok")
    ws.send({ topic, event: "phx_leave", payload: {}, ref: "9", join_ref: "8" })
    assert.deepEqual(await ws.next(byRef("9")), reply(topic, "9", "ok", {}))
    assert.deepEqual(await ws.next((f) => f.event === "phx_close"), {
      topic, event: "phx_close", payload: {}, ref: "8",
    })

    ws.send({ topic: "nowhere:1", event: "phx_join", payload: {}, ref: "10" })
    assert.deepEqual(
      await ws.next(byRef("10")),
      reply("nowhere:1", "10", "error", { reason: "unmatched topic" }),
    )
  })
}

test("LongPoll vsn=1.0.0: V1 frames in both directions", { timeout: 4 * WAIT_MS }, async () => {
  const base = `${HTTP_URL}/socket/longpoll?vsn=1.0.0`
  const call = async (method, url, body) => {
    const resp = await within(
      fetch(url, { method, body, headers: body ? { "content-type": "application/x-ndjson" } : {} }),
      `${method} ${url}`,
      WAIT_MS * 3,
    )
    assert.equal(resp.status, 200)
    return resp.json()
  }
  const opened = await call("GET", base)
  assert.equal(opened.status, 410)
  const url = `${base}&token=${encodeURIComponent(opened.token)}`

  const topic = unique("test:lp-v1-")
  const frames = [
    { topic, event: "phx_join", payload: {}, ref: "1", join_ref: "1" },
    { topic, event: "echo", payload: { over: "longpoll" }, ref: "2", join_ref: "1" },
  ]
  assert.deepEqual(await call("POST", url, frames.map((f) => JSON.stringify(f)).join("\n")), {
    status: 200,
  })

  const received = []
  const deadline = Date.now() + WAIT_MS * 2
  while (received.length < 2 && Date.now() < deadline) {
    const poll = await call("GET", url)
    assert.ok([200, 204].includes(poll.status), JSON.stringify(poll))
    for (const m of poll.messages || []) received.push(JSON.parse(m))
  }
  assert.deepEqual(received, [
    { topic, event: "phx_reply", payload: { status: "ok", response: ANONYMOUS }, ref: "1" },
    { topic, event: "phx_reply", payload: { status: "ok", response: { over: "longpoll" } }, ref: "2" },
  ])
})
