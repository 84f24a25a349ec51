// What the cluster scenarios share: clients of the official `phoenix` client (unmodified, `ws`
// as its transport since Node before 22 has no WebSocket), each joined to a topic with its
// `Presence`, and the line protocol through which cluster.sh drives a scenario.
//
// Protocol: cluster.sh writes one command a line on stdin; every command gets exactly one
// answer line on stdout, `ok key=value ...` or `fail <what went wrong>`. Everything else goes
// to stderr, so the answers stay machine-readable.

import { createInterface } from "node:readline"
import { Socket, Presence } from "phoenix"
import WebSocket from "ws"

export const now = () => Number(process.hrtime.bigint() / 1_000_000n)

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function note(...args) {
  console.error(`[${new Date().toISOString().slice(11, 23)}]`, ...args)
}

/** `http://host:port` → the socket URL the client wants. */
export function socketUrl(httpUrl) {
  return `${httpUrl.replace(/\/+$/, "").replace(/^http/, "ws")}/socket`
}

/**
 * Polls `condition` every `step` ms until it holds, or `ms` have passed. Resolves with whether
 * it held; never throws, so the caller can say what was missing.
 */
export async function until(condition, ms, step = 20) {
  const deadline = now() + ms
  for (;;) {
    if (condition()) return true
    if (now() >= deadline) return false
    await sleep(step)
  }
}

/**
 * One client: a socket to `url` and its channel on `topic`, with the client's own reconnect
 * and rejoin schedules (the defaults, as a browser would run them). `user` names it through the
 * connect params (the room channel tracks it under that name); null joins anonymously, which
 * the room channel does not track: an observer.
 *
 * It records what the scenarios measure: when its socket closed, when each join succeeded,
 * and every `new_msg` it received.
 */
export function client(url, topic, user) {
  const socket = new Socket(socketUrl(url), {
    transport: WebSocket,
    params: user ? { user } : {},
  })
  const channel = socket.channel(topic, {})
  const presence = new Presence(channel)
  const c = {
    user,
    socket,
    channel,
    presence,
    opens: [],
    closes: [],
    joins: [],
    joinErrors: 0,
    // `phx_close` from the server: the client then drops the channel for good (it is not
    // rejoined when the socket reconnects), as it does after leaving it.
    channelClosed: null,
    messages: [],
  }
  socket.onOpen(() => c.opens.push(now()))
  socket.onClose(() => c.closes.push(now()))
  channel.onClose(() => (c.channelClosed = now()))
  channel.on("new_msg", (payload) => c.messages.push({ body: payload.body, at: now() }))
  // The join push's hooks stay across rejoins: this fires for every successful (re)join.
  channel
    .join()
    .receive("ok", () => c.joins.push(now()))
    .receive("error", () => c.joinErrors++)
  socket.connect()
  return c
}

export const joined = (c) => c.channel.state === "joined"

/** The client's presence list as sorted `key phx_ref` strings: comparable across clients. */
export function entries(c) {
  const out = []
  c.presence.list((key, { metas }) => {
    for (const meta of metas) out.push(`${key} ${meta.phx_ref}`)
  })
  return out.sort()
}

/** The users in the client's presence list. */
export function users(c) {
  return c.presence.list((key) => key)
}

/** `key=value` pairs of an object, for an answer line. */
export function figures(obj) {
  return Object.entries(obj)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")
}

/**
 * Serves the line protocol: `handlers[command](...args)` answers an object of figures (or
 * nothing) for `ok`, or throws for `fail`. Commands run one after another. `quit` disconnects
 * `clients()` and exits.
 */
export function serve(handlers, clients = () => []) {
  const lines = createInterface({ input: process.stdin })
  let queue = Promise.resolve()
  const answer = (line) => process.stdout.write(`${line.replace(/\n/g, " ")}\n`)
  lines.on("line", (line) => {
    const [command, ...args] = line.trim().split(/\s+/)
    queue = queue.then(async () => {
      if (command === "quit") {
        for (const c of clients()) c.socket.disconnect()
        answer("ok")
        // The sockets' close frames get a moment to leave; then nothing is left to wait for.
        setTimeout(() => process.exit(0), 200)
        return
      }
      const handler = handlers[command]
      if (!handler) return answer(`fail unknown command ${command}`)
      try {
        const result = await handler(...args)
        answer(result ? `ok ${figures(result)}` : "ok")
      } catch (err) {
        answer(`fail ${err.message}`)
      }
    })
  })
  // cluster.sh gone (its end of the pipe closed): nothing more will be asked.
  lines.on("close", () => queue.then(() => process.exit(0)))
}
