// Rolling restart: COUNT clients through the load balancer, each joined to room:lobby under its
// own name, and one anonymous observer connected straight to each replica (so the replicas' own
// views can be compared, whichever replica the load balancer picked for the clients).
//
// Usage: node rolling.mjs PROXY_URL REPLICA_A_URL REPLICA_B_URL, then commands on stdin:
//   start COUNT BOUND_MS      connect and join everyone; ok once every list holds COUNT users
//   mark NAME                 remember now as NAME (just before a replica is sent SIGTERM)
//   rejoined NAME BOUND_MS    every socket closed since NAME is joined again, within BOUND_MS
//                             of the first close
//   converged BOUND_MS        every client's and both observers' lists: all COUNT users, one
//                             meta each, the same phx_refs everywhere
//   quit

import { client, entries, joined, note, now, serve, until } from "./lib.mjs"

const [proxyUrl, urlA, urlB] = process.argv.slice(2)
if (!urlB) throw new Error("usage: node rolling.mjs PROXY_URL REPLICA_A_URL REPLICA_B_URL")

const TOPIC = "room:lobby"
let clients = []
let observers = []
let count = 0
const marks = new Map()

/** Why the presence lists do not agree yet, or null when they do. */
function disagreement() {
  // An observer whose replica restarted shows its old list until it has joined the new one.
  const stale = observers.findIndex((c) => !joined(c) || c.joins.at(-1) < (c.closes.at(-1) ?? 0))
  if (stale >= 0) return `replica ${"ab"[stale]}'s observer has not joined it again`
  const reference = entries(observers[0])
  const keys = new Set(reference.map((e) => e.split(" ")[0]))
  if (reference.length !== count || keys.size !== count) {
    return `replica a's observer lists ${reference.length} metas of ${keys.size} users, not ${count}`
  }
  const wanted = reference.join("\n")
  if (entries(observers[1]).join("\n") !== wanted) {
    return `the replicas' observers disagree (b lists ${entries(observers[1]).length} metas)`
  }
  const off = clients.filter((c) => entries(c).join("\n") !== wanted)
  if (off.length) {
    return `${off.length} clients' lists differ from the replicas' (${off[0].user}: ${entries(off[0]).length} metas)`
  }
  return null
}

async function converged(boundMs) {
  const start = now()
  if (!(await until(() => disagreement() === null, Number(boundMs), 50))) {
    throw new Error(`presence not converged within ${boundMs} ms: ${disagreement()}`)
  }
  return { converged_ms: now() - start }
}

serve(
  {
    async start(n, boundMs) {
      count = Number(n)
      const start = now()
      observers = [client(urlA, TOPIC, null), client(urlB, TOPIC, null)]
      clients = Array.from({ length: count }, (_, i) =>
        client(proxyUrl, TOPIC, `user-${String(i).padStart(3, "0")}`),
      )
      const all = () => clients.every(joined) && observers.every(joined)
      if (!(await until(all, Number(boundMs)))) {
        throw new Error(`only ${clients.filter(joined).length} of ${count} clients joined within ${boundMs} ms`)
      }
      const joinedMs = now() - start
      const { converged_ms } = await converged(boundMs)
      note(`${count} clients joined in ${joinedMs} ms, presence converged ${converged_ms} ms later`)
      return { joined_ms: joinedMs, converged_ms }
    },

    mark(name) {
      marks.set(name, now())
    },

    async rejoined(name, boundMs) {
      const t0 = marks.get(name)
      if (t0 === undefined) throw new Error(`no mark ${name}`)
      const closedSince = (c) => c.closes.filter((t) => t >= t0)
      // Called once the old replica has exited, so its sockets are closed; the last close
      // reaches the client through the load balancer a moment later.
      await until(() => clients.some((c) => closedSince(c).length > 0), 2000)
      const dropped = clients.filter((c) => closedSince(c).length > 0)
      if (!dropped.length) throw new Error(`no socket was closed since ${name}`)
      const firstClose = Math.min(...dropped.map((c) => closedSince(c)[0]))
      const back = (c) => joined(c) && c.joins.some((t) => t > c.closes[c.closes.length - 1])
      const left = Number(boundMs) - (now() - firstClose)
      const ok = await until(() => clients.every(joined) && dropped.every(back), Math.max(left, 0), 10)
      const attempts = dropped.reduce((sum, c) => sum + closedSince(c).length, 0)
      if (!ok) {
        const missing = clients.filter((c) => !joined(c))
        const closedByServer = missing.filter((c) => c.channelClosed !== null).length
        throw new Error(
          `${missing.length} of ${count} sockets not joined again within ${boundMs} ms of the first close ` +
            `(${dropped.length} closed, ${attempts} closes in all; ${closedByServer} of the missing ` +
            `got phx_close, after which the client does not rejoin)`,
        )
      }
      const after = (times, c) => times.find((t) => t > c.closes[c.closes.length - 1])
      const rejoinedAt = Math.max(...dropped.map((c) => after(c.joins, c)))
      const reopenedAt = Math.max(...dropped.map((c) => after(c.opens, c)))
      // The poll above may wake a little past its deadline, under load.
      if (rejoinedAt - firstClose > Number(boundMs)) {
        throw new Error(`the last socket joined again ${rejoinedAt - firstClose} ms after the first close, past ${boundMs} ms`)
      }
      return {
        dropped: dropped.length,
        // Closes beyond one per dropped socket: reconnects that failed (sent to a replica that
        // was gone or refusing).
        failed_reconnects: attempts - dropped.length,
        first_close_ms: firstClose - t0,
        // Every socket open again, then every channel joined again.
        reconnect_ms: reopenedAt - firstClose,
        rejoin_ms: rejoinedAt - firstClose,
        since_sigterm_ms: rejoinedAt - t0,
        // Join replies with an error, since the start (the client retries them on its own).
        join_errors: clients.reduce((sum, c) => sum + c.joinErrors, 0),
      }
    },

    converged,
  },
  () => [...clients, ...observers],
)
