// Connecting: each transport and serializer opens, connect params and the user token (as
// `authToken` or the `token` param) reach the socket, and a refused connection (a bad param,
// a forged token) is reported to the client without ever opening.

import { test } from "node:test"
import assert from "node:assert/strict"

import {
  variants, socket, connected, join, within, quiet, unique, logIn, ANONYMOUS, WAIT_MS,
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
  // LongPoll requests, never in the URL. The socket verifies it: the user is the one the
  // token was signed for, whatever the `user` param claims.
  test(`${variant.name}: a user token from the page, as authToken, says who connects`, { timeout: 3 * WAIT_MS }, async (t) => {
    const name = unique("ada-")
    const authToken = await logIn(name)
    const s = await connected(t, variant, { authToken, params: { user: "mallory" } })
    const response = await join(s.channel(unique("test:token-")))
    assert.deepEqual(response, { user: name, socket_id: `users_socket:${name}`, auth_token: authToken })
  })

  test(`${variant.name}: the user token works as the token param too`, { timeout: 3 * WAIT_MS }, async (t) => {
    const name = unique("grace-")
    const token = await logIn(name)
    const s = await connected(t, variant, { params: { token } })
    const response = await join(s.channel(unique("test:param-")))
    assert.deepEqual(response, { user: name, socket_id: `users_socket:${name}`, auth_token: null })
  })

  // A `user` that is not a string, or a token the server did not sign (in either place),
  // refuses the connection: nested params are sent as user[name]=x.
  const refusals = [
    ["a user that is not a string", { params: { user: { name: "x" } } }],
    ["a forged authToken", { authToken: "SFMyNTY.eyJkYXRhIjoiYWRhIn0.forged" }],
    ["a forged token param", { params: { token: "SFMyNTY.eyJkYXRhIjoiYWRhIn0.forged" } }],
  ]
  for (const [what, opts] of refusals) {
    test(`${variant.name}: ${what} errors and never opens`, { timeout: 3 * WAIT_MS }, async (t) => {
      const s = socket(t, variant, { ...opts, reconnectAfterMs: () => 1000 })
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
}
