// Connecting: each transport and serializer opens, connect params and the `authToken` reach
// the socket, and a refused connection is reported to the client without ever opening.

import { test } from "node:test"
import assert from "node:assert/strict"

import {
  variants, socket, connected, join, within, quiet, unique, ANONYMOUS, WAIT_MS,
} from "./support.js"

for (const variant of variants) {
  test(`${variant.name}: connects and sees its connect params`, { timeout: 3 * WAIT_MS }, async (t) => {
    const user = unique("ada-")
    const s = await connected(t, variant, { params: { user } })
    assert.equal(s.isConnected(), true)
    const response = await join(s.channel(unique("test:connect-")))
    assert.deepEqual(response, { user, socket_id: `users_socket:${user}`, auth_token: null })

    const anonymous = await connected(t, variant)
    assert.deepEqual(await join(anonymous.channel(unique("test:anonymous-"))), ANONYMOUS)
  })

  // The token travels as a WebSocket subprotocol, or as the `X-Phoenix-AuthToken` header of
  // LongPoll requests, never in the URL.
  test(`${variant.name}: the authToken reaches connect`, { timeout: 3 * WAIT_MS }, async (t) => {
    const authToken = `${unique("token-")} with spaces/and+signs=`
    const s = await connected(t, variant, { authToken })
    const response = await join(s.channel(unique("test:token-")))
    assert.deepEqual(response, { ...ANONYMOUS, auth_token: authToken })
  })

  test(`${variant.name}: a refused connection errors and never opens`, { timeout: 3 * WAIT_MS }, async (t) => {
    // The socket refuses a `user` that is not a string; nested params are sent as user[name]=x.
    const s = socket(t, variant, { params: { user: { name: "x" } }, reconnectAfterMs: () => 1000 })
    let opened = false
    s.onOpen(() => { opened = true })
    const errored = new Promise((resolve) => s.onError(resolve))
    s.connect()
    const error = await within(errored, "the connection error")
    if (variant.transport.name === "LongPoll") {
      assert.equal(error, 403, "LongPoll reports the 403 status")
    }
    await quiet(200)
    assert.equal(opened, false)
    assert.equal(s.isConnected(), false)
  })
}
