// GraphQL against the example app with the clients GraphQL users have, unmodified from npm:
// `@absinthe/socket` (Absinthe's client, over the official `phoenix` Socket, on the
// `__absinthe__:control` channel) and `graphql-ws` (the `graphql-transport-ws` protocol at
// /api/graphql). A message posted over REST, over GraphQL or in a room's channel reaches a
// `messageAdded` subscription, and a mutation on one node reaches a subscriber connected to the
// other (two nodes sharing Redis).

import { test } from "node:test"
import assert from "node:assert/strict"
import * as withAbsintheSocket from "@absinthe/socket"
import { createClient } from "graphql-ws"
import WebSocket from "ws"

import {
  variants, socketAt, connect, join, reply, unique, within, request, createRoom,
  HTTP_URL, SOCKET_URL, SOCKET_URL_B, WAIT_MS,
} from "./support.js"

const [websocket] = variants
const GRAPHQL_URL = `${HTTP_URL}/api/graphql`
const HTTP_URL_B = process.env.FAWKES_URL_B?.replace(/\/+$/, "")

/** POSTs a GraphQL request; resolves with `{status, body}`. */
async function graphql(query, variables, url = GRAPHQL_URL) {
  const resp = await within(
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ query, variables }),
    }),
    `POST ${url}`,
  )
  return { status: resp.status, body: await resp.json() }
}

const ADDED = `subscription Added($roomId: ID!) { messageAdded(roomId: $roomId) { id roomId author body } }`
const CREATE = `mutation Create($roomId: ID!, $author: String!, $body: String!) {
  createMessage(roomId: $roomId, author: $author, body: $body) { id author body }
}`

/** An Absinthe socket over the official Phoenix client connected to `url`. */
async function absintheAt(t, url, user) {
  const phoenix = socketAt(t, url, websocket, { params: { user } })
  await connect(phoenix)
  return withAbsintheSocket.create(phoenix)
}

/** Sends `operation` through `absinthe`, resolving with its first result (or rejecting). */
function absintheResult(absinthe, operation, variables) {
  const notifier = withAbsintheSocket.send(absinthe, { operation, variables })
  return within(
    new Promise((resolve, reject) => {
      withAbsintheSocket.observe(absinthe, notifier, { onResult: resolve, onError: reject, onAbort: reject })
    }),
    `the result of ${operation.split("{")[0].trim()}`,
  )
}

/** Subscribes through `absinthe`; `results` fills as data arrives, `started` resolves once subscribed. */
function absintheSubscribe(absinthe, operation, variables) {
  const notifier = withAbsintheSocket.send(absinthe, { operation, variables })
  const results = []
  const waiters = []
  const started = new Promise((resolve, reject) => {
    withAbsintheSocket.observe(absinthe, notifier, {
      onStart: resolve,
      onError: reject,
      onAbort: reject,
      onResult: (result) => {
        results.push(result)
        for (const waiter of waiters.splice(0)) waiter()
      },
    })
  })
  const nextWhere = (matches, what) =>
    within(
      new Promise((resolve) => {
        const check = () => {
          const found = results.find(matches)
          if (found) resolve(found)
          else waiters.push(check)
        }
        check()
      }),
      what,
    )
  return { notifier, results, started: within(started, "the subscription to start"), nextWhere }
}

/** A graphql-ws client at `url`, disposed when the test ends. */
function graphqlWs(t, url = GRAPHQL_URL) {
  const client = createClient({ url: url.replace(/^http/, "ws"), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false })
  t.after(() => client.dispose())
  return client
}

test("@absinthe/socket: queries, mutations and errors over the channel", { timeout: 4 * WAIT_MS }, async (t) => {
  const absinthe = await absintheAt(t, SOCKET_URL, unique("ada-"))
  const roomName = unique("gql-room-")
  const roomId = String(await createRoom(roomName))

  const room = await absintheResult(absinthe, `query Room($id: ID!) { room(id: $id) { id name } }`, { id: roomId })
  assert.deepEqual(room, { data: { room: { id: roomId, name: roomName } } })

  const body = unique("over absinthe ")
  const created = await absintheResult(absinthe, CREATE, { roomId, author: "Ada", body })
  assert.equal(created.data.createMessage.body, body)
  const { body: listed } = await request("GET", `/api/rooms/${roomId}/messages`)
  assert.ok(listed.data.some((m) => m.body === body), "the mutation stored the message")

  // A mutation the context refuses: a result with the GraphQL error, and the fields that
  // are wrong in its extensions.
  const invalid = await absintheResult(absinthe, CREATE, { roomId, author: "Ada", body: "   " })
  assert.equal(invalid.data, null)
  assert.equal(invalid.errors[0].message, "the message is not valid")
  assert.deepEqual(invalid.errors[0].path, ["createMessage"])
  assert.ok(invalid.errors[0].extensions.fields.body, JSON.stringify(invalid.errors[0]))
  // A document refused before it runs is the request's error, as with Absinthe itself.
  await assert.rejects(absintheResult(absinthe, `{ nothing }`), /request/)
})

test("@absinthe/socket: messageAdded gets what is posted over REST, GraphQL and the room's channel", { timeout: 6 * WAIT_MS }, async (t) => {
  const absinthe = await absintheAt(t, SOCKET_URL, unique("grace-"))
  const roomId = String(await createRoom())
  const sub = absintheSubscribe(absinthe, ADDED, { roomId })
  await sub.started

  // A room that does not exist is refused (each subscription is a pubsub topic): its error
  // arrives, either as the refused document or as the subscription's only result.
  const missing = absintheSubscribe(absinthe, ADDED, { roomId: "987654321" })
  const missingError = await missing.started.then(
    () => missing.nextWhere((r) => Array.isArray(r.errors), "the missing room's error").then((r) => r.errors),
    (err) => err,
  )
  // Refused at once, the client rejects the request (its message does not carry the errors,
  // as for any refused document); refused after the lookup, the errors are the result.
  if (missingError instanceof Error) assert.match(missingError.message, /^request:/)
  else assert.match(JSON.stringify(missingError), /room not found/)

  const viaRest = unique("via REST ")
  const posted = await request("POST", `/api/rooms/${roomId}/messages`, { message: { author: "Rest", body: viaRest } })
  assert.equal(posted.status, 201)
  const fromRest = await sub.nextWhere((r) => r.data?.messageAdded?.body === viaRest, "the REST message")
  assert.deepEqual(fromRest.data.messageAdded, { id: String(posted.body.data.id), roomId, author: "Rest", body: viaRest })

  const viaGraphql = unique("via GraphQL ")
  const { status } = await graphql(CREATE, { roomId, author: "Gql", body: viaGraphql })
  assert.equal(status, 200)
  await sub.nextWhere((r) => r.data?.messageAdded?.body === viaGraphql, "the GraphQL message")

  const member = socketAt(t, SOCKET_URL, websocket, { params: { user: "Chan" } })
  await connect(member)
  const channel = member.channel(`room:${roomId}`)
  await join(channel)
  const viaChannel = unique("via the channel ")
  assert.equal((await reply(channel.push("new_msg", { author: "Chan", body: viaChannel }))).status, "ok")
  await sub.nextWhere((r) => r.data?.messageAdded?.body === viaChannel, "the channel's message")

  // Unsubscribed, nothing more arrives.
  withAbsintheSocket.cancel(absinthe, sub.notifier)
  const count = sub.results.length
  await graphql(CREATE, { roomId, author: "Gql", body: unique("after cancel ") })
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(sub.results.length, count, "no result after the cancel")
})

test("graphql-ws: queries and a subscription over graphql-transport-ws", { timeout: 4 * WAIT_MS }, async (t) => {
  const client = graphqlWs(t)
  const roomId = String(await createRoom())
  const query = await within(
    new Promise((resolve, reject) => {
      let result
      client.subscribe({ query: `{ room(id: "${roomId}") { id } }` }, {
        next: (value) => { result = value },
        error: reject,
        complete: () => resolve(result),
      })
    }),
    "a query over graphql-ws",
  )
  assert.deepEqual(query, { data: { room: { id: roomId } } })

  const results = []
  let ready
  const arrived = new Promise((resolve) => { ready = resolve })
  const stop = client.subscribe({ query: ADDED, variables: { roomId } }, {
    next: (value) => {
      results.push(value)
      ready()
    },
    error: (err) => results.push({ error: err }),
    complete: () => {},
  })
  t.after(stop)
  // The subscription is registered once the server has read it; a post before that is missed.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const body = unique("to graphql-ws ")
  await request("POST", `/api/rooms/${roomId}/messages`, { message: { author: "Rest", body } })
  await within(arrived, "the subscription's data")
  assert.equal(results[0].data.messageAdded.body, body)

  // A refused document is the operation's error.
  const refused = await within(
    new Promise((resolve) => {
      client.subscribe({ query: `subscription { nothing }` }, { next: () => {}, error: resolve, complete: () => resolve(null) })
    }),
    "a refused subscription",
  )
  assert.ok(Array.isArray(refused) && /nothing/.test(refused[0].message), JSON.stringify(refused))

  // A room that does not exist is not subscribed to (each would be a pubsub topic): the
  // operation ends with the resolver's error.
  const missing = await within(
    new Promise((resolve) => {
      const values = []
      client.subscribe({ query: ADDED, variables: { roomId: "987654321" } }, {
        next: (value) => values.push(value),
        error: (err) => resolve({ error: err }),
        complete: () => resolve({ values }),
      })
    }),
    "a subscription to a missing room",
  )
  const errors = missing.values?.[0]?.errors ?? missing.error
  assert.ok(Array.isArray(errors) && /room not found/.test(errors[0].message), JSON.stringify(missing))
})

test("GraphQL over HTTP: limits refuse what costs too much", { timeout: 3 * WAIT_MS }, async () => {
  const fine = await graphql(`{ rooms { messages { id } } }`)
  assert.equal(fine.status, 200)
  assert.ok(Array.isArray(fine.body.data.rooms), JSON.stringify(fine.body))
  const costly = await graphql(`{ rooms(first: 100) { messages(last: 100) { id author body insertedAt } } }`)
  assert.equal(costly.status, 200)
  assert.match(costly.body.errors[0].message, /complex/)
  const nested = await graphql(`{ ${"rooms { ".repeat(200)}`)
  assert.equal(nested.status, 400)
  const get = await within(fetch(`${GRAPHQL_URL}?query=${encodeURIComponent(`mutation { createMessage(roomId: "1", author: "a", body: "b") { id } }`)}`), "GET mutation")
  assert.equal(get.status, 405)
})

test("a mutation on one node reaches a subscriber on the other", { timeout: 6 * WAIT_MS }, async (t) => {
  assert.ok(SOCKET_URL_B && HTTP_URL_B, "FAWKES_URL_B is set by run.sh")
  const roomId = String(await createRoom())
  // Subscribed on B with Absinthe's client and with graphql-ws; the mutation goes to A.
  const absinthe = await absintheAt(t, SOCKET_URL_B, unique("bob-"))
  const sub = absintheSubscribe(absinthe, ADDED, { roomId })
  await sub.started
  const client = graphqlWs(t, `${HTTP_URL_B}/api/graphql`)
  const overWs = []
  let wsGot
  const wsArrived = new Promise((resolve) => { wsGot = resolve })
  t.after(client.subscribe({ query: ADDED, variables: { roomId } }, {
    next: (value) => { overWs.push(value); wsGot() },
    error: () => {},
    complete: () => {},
  }))
  await new Promise((resolve) => setTimeout(resolve, 300))

  const body = unique("across nodes ")
  const { body: created } = await graphql(CREATE, { roomId, author: "Ada", body })
  assert.equal(created.data.createMessage.body, body)
  const got = await sub.nextWhere((r) => r.data?.messageAdded?.body === body, "the other node's subscription (absinthe)")
  assert.equal(got.data.messageAdded.id, created.data.createMessage.id)
  await within(wsArrived, "the other node's subscription (graphql-ws)")
  assert.equal(overWs[0].data.messageAdded.body, body)
})
