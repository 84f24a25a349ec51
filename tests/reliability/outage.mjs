// Redis outage: COUNT clients on each of two replicas, connected straight to their replica and
// joined to room:lobby. One client per replica posts `new_msg` every INTERVAL ms, each with a
// unique body (`<replica>:<n>`); every client records what it receives. cluster.sh kills Redis
// and starts it again meanwhile, marking both moments.
//
// Usage: node outage.mjs REPLICA_A_URL REPLICA_B_URL, then commands on stdin:
//   start COUNT BOUND_MS   connect and join everyone; ok once every client lists all 2 × COUNT
//   post INTERVAL_MS       start posting on both replicas
//   mark NAME              remember now as NAME (`kill` just before Redis is killed, `restart`
//                          once it answers again)
//   stop BOUND_MS          stop posting; wait for every reply
//   settle BOUND_MS DROPPED_A DROPPED_B
//                          wait until every client has every message the other replica did not
//                          report dropped (DROPPED_x: messages replica x's adapter dropped this
//                          round, the batch in flight when its connection broke), then count,
//                          per receiving replica, the other replica's messages it never got, by
//                          when they were posted (before the kill, during the outage, after the
//                          restart), and how many of them that drop does not account for;
//                          duplicates; messages out of order; recovery times
//   presence BOUND_MS      every client lists every user once, the same entries everywhere
//   quit

import { client, entries, joined, note, now, serve, sleep, until, users } from "./lib.mjs"

const [urlA, urlB] = process.argv.slice(2)
if (!urlB) throw new Error("usage: node outage.mjs REPLICA_A_URL REPLICA_B_URL")

const TOPIC = "room:lobby"
const nodes = { a: { url: urlA, clients: [] }, b: { url: urlB, clients: [] } }
const other = { a: "b", b: "a" }
/** Every message posted: `{node, seq, body, at, status}`; status set by its reply. */
const posted = []
const marks = new Map()
/** Per replica, how often a user of the other replica left the list of its first client. */
const flaps = { a: 0, b: 0 }
let poster = null

function mark(name) {
  const t = marks.get(name)
  if (t === undefined) throw new Error(`no mark ${name}`)
  return t
}

function window(at) {
  if (at < mark("kill")) return "before"
  if (at < mark("restart")) return "outage"
  return "after"
}

/** Whether every client of replica `name` has `body`. */
function everywhere(name, body) {
  return nodes[name].clients.every((c) => c.messages.some((m) => m.body === body))
}

/** The other replica's accepted messages that some client of replica `name` lacks. */
function missingAt(name) {
  return posted.filter((m) => m.node === other[name] && m.status === "ok" && !everywhere(name, m.body))
}

serve(
  {
    async start(n, boundMs) {
      const count = Number(n)
      for (const [name, node] of Object.entries(nodes)) {
        node.clients = Array.from({ length: count }, (_, i) => client(node.url, TOPIC, `outage-${name}-${i}`))
      }
      const everyone = Object.values(nodes).flatMap((node) => node.clients)
      const ready = () => everyone.every((c) => joined(c) && users(c).length === everyone.length)
      if (!(await until(ready, Number(boundMs)))) throw new Error(`not every client joined and listed within ${boundMs} ms`)
      for (const name of ["a", "b"]) {
        nodes[name].clients[0].presence.onLeave((key, current) => {
          if (key.startsWith(`outage-${other[name]}-`) && current.metas.length === 0) flaps[name]++
        })
      }
    },

    post(intervalMs) {
      const seqs = { a: 0, b: 0 }
      poster = setInterval(() => {
        for (const name of ["a", "b"]) {
          const seq = ++seqs[name]
          const m = { node: name, seq, body: `${name}:${seq}`, at: now(), status: null }
          posted.push(m)
          nodes[name].clients[0].channel
            .push("new_msg", { author: `poster-${name}`, body: m.body })
            .receive("ok", () => (m.status = "ok"))
            .receive("error", () => (m.status = "error"))
            .receive("timeout", () => (m.status = "timeout"))
        }
      }, Number(intervalMs))
    },

    mark(name) {
      marks.set(name, now())
    },

    async stop(boundMs) {
      clearInterval(poster)
      if (!(await until(() => posted.every((m) => m.status !== null), Number(boundMs)))) {
        throw new Error(`${posted.filter((m) => m.status === null).length} posts never answered`)
      }
      const refused = posted.filter((m) => m.status !== "ok")
      if (refused.length) throw new Error(`${refused.length} posts not accepted (first: ${refused[0].body} ${refused[0].status})`)
      return { posted: posted.length }
    },

    async settle(boundMs, droppedA, droppedB) {
      const dropped = { a: Number(droppedA), b: Number(droppedB) }
      const start = now()
      // What the sender's adapter dropped can never arrive; anything more is still awaited.
      const complete = await until(
        () => ["a", "b"].every((name) => missingAt(name).length <= dropped[other[name]]),
        Number(boundMs),
        50,
      )
      // Anything still on its way would show up as a duplicate or out of order a moment later.
      await sleep(300)
      const restart = mark("restart")
      const out = { settled: complete, settle_ms: now() - start }
      for (const [name, node] of Object.entries(nodes)) {
        const from = other[name]
        const theirs = posted.filter((m) => m.node === from)
        let duplicates = 0
        let outOfOrder = 0
        let lostLocal = 0
        let resumed = Infinity
        let caughtUp = -Infinity
        for (const c of node.clients) {
          const seen = new Map()
          for (const { body, at } of c.messages) {
            if (seen.has(body)) duplicates++
            else seen.set(body, at)
          }
          for (const m of posted.filter((m) => m.node === name)) if (!seen.has(m.body)) lostLocal++
          // Per origin, the order of arrival must be the order of posting.
          let last = 0
          for (const { body } of c.messages) {
            const [origin, seq] = body.split(":")
            if (origin !== from) continue
            if (Number(seq) < last) outOfOrder++
            last = Math.max(last, Number(seq))
          }
          for (const m of theirs) {
            const at = seen.get(m.body)
            if (at === undefined) continue
            if (at >= restart) resumed = Math.min(resumed, at - restart)
            if (m.at < restart) caughtUp = Math.max(caughtUp, at - restart)
          }
        }
        // A message counts as lost when any client of this replica lacks it.
        const lost = { before: 0, outage: 0, after: 0 }
        const missing = missingAt(name)
        for (const m of missing) lost[window(m.at)]++
        if (missing.length) {
          const when = missing.map((m) => `${m.body} posted ${m.at - mark("kill")} ms after the kill`)
          note(`replica ${name} never got: ${when.join(", ")}; replica ${from}'s adapter dropped ${dropped[from]}`)
        }
        Object.assign(out, {
          [`${name}_from_${from}_posted`]: theirs.length,
          [`${name}_from_${from}_posted_outage`]: theirs.filter((m) => window(m.at) === "outage").length,
          [`${name}_lost_before`]: lost.before,
          [`${name}_lost_outage`]: lost.outage,
          [`${name}_lost_after`]: lost.after,
          // Lost beyond the batch the sender's adapter reports dropped: what the framework
          // promises never happens.
          [`${name}_lost_unexplained`]: Math.max(0, missing.length - dropped[from]),
          [`${name}_lost_local`]: lostLocal,
          [`${name}_duplicates`]: duplicates,
          [`${name}_out_of_order`]: outOfOrder,
          [`${name}_resumed_ms`]: resumed === Infinity ? "none" : resumed,
          [`${name}_caught_up_ms`]: caughtUp === -Infinity ? "none" : caughtUp,
          [`${name}_presence_flaps`]: flaps[name],
        })
      }
      out.outage_ms = mark("restart") - mark("kill")
      return out
    },

    async presence(boundMs) {
      // Replicas reported down during the outage come back as new ones, and their users with
      // them: the lists repair themselves.
      const everyone = Object.values(nodes).flatMap((node) => node.clients)
      const agreed = () => {
        const reference = entries(everyone[0]).join("\n")
        return (
          entries(everyone[0]).length === everyone.length &&
          everyone.every((c) => entries(c).join("\n") === reference)
        )
      }
      if (!(await until(agreed, Number(boundMs), 50))) {
        const counts = everyone.map((c) => entries(c).length).join(",")
        throw new Error(`presence not repaired within ${boundMs} ms: entries per client ${counts}`)
      }
      return { presence_repaired: "yes" }
    },
  },
  () => Object.values(nodes).flatMap((node) => node.clients),
)
