// Redis outage: COUNT clients on each of two replicas, connected straight to their replica and
// joined to room:lobby. One client per replica posts `new_msg` every INTERVAL ms, each with a
// unique body (`<replica>:<n>`); every client records what it receives. cluster.sh kills Redis
// and starts it again meanwhile, marking both moments.
//
// Usage: node outage.mjs REPLICA_A_URL REPLICA_B_URL, then commands on stdin:
//   start COUNT BOUND_MS   connect and join everyone
//   post INTERVAL_MS       start posting on both replicas
//   mark NAME              remember now as NAME (`kill` just before Redis is killed, `restart`
//                          once it answers again)
//   stop BOUND_MS          stop posting; wait for every reply
//   settle BOUND_MS        wait until every client has every message, then count, per
//                          receiving replica, the other replica's messages it never got, by
//                          when they were posted (before the kill, during the outage, after the
//                          restart), duplicates, and messages out of order
//   quit

import { client, joined, note, now, serve, sleep, until } from "./lib.mjs"

const [urlA, urlB] = process.argv.slice(2)
if (!urlB) throw new Error("usage: node outage.mjs REPLICA_A_URL REPLICA_B_URL")

const TOPIC = "room:lobby"
const nodes = { a: { url: urlA, clients: [] }, b: { url: urlB, clients: [] } }
const other = { a: "b", b: "a" }
/** Every message posted: `{node, seq, body, at, status}`; status set by its reply. */
const posted = []
const marks = new Map()
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

/** For each client, body → how many times and when first received. */
function received(c) {
  const seen = new Map()
  for (const { body, at } of c.messages) {
    const s = seen.get(body)
    if (s) s.times++
    else seen.set(body, { times: 1, at })
  }
  return seen
}

function everyoneHasEverything() {
  const ok = posted.filter((m) => m.status === "ok")
  for (const { clients } of Object.values(nodes)) {
    for (const c of clients) {
      const seen = received(c)
      if (ok.some((m) => !seen.has(m.body))) return false
    }
  }
  return true
}

serve(
  {
    async start(n, boundMs) {
      const count = Number(n)
      for (const [name, node] of Object.entries(nodes)) {
        node.clients = Array.from({ length: count }, (_, i) => client(node.url, TOPIC, `outage-${name}-${i}`))
      }
      const all = () => Object.values(nodes).every((node) => node.clients.every(joined))
      if (!(await until(all, Number(boundMs)))) throw new Error(`not every client joined within ${boundMs} ms`)
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

    async settle(boundMs) {
      const start = now()
      const complete = await until(everyoneHasEverything, Number(boundMs), 50)
      // Anything still on its way would show up as a duplicate or out of order a moment later.
      await sleep(300)
      const restart = mark("restart")
      const out = { settled: complete, settle_ms: now() - start }
      for (const [name, node] of Object.entries(nodes)) {
        const from = other[name]
        const theirs = posted.filter((m) => m.node === from)
        const lost = { before: 0, outage: 0, after: 0 }
        const lostBodies = []
        let duplicates = 0
        let outOfOrder = 0
        let lostLocal = 0
        let resumed = Infinity
        let caughtUp = -Infinity
        for (const c of node.clients) {
          const seen = received(c)
          for (const s of seen.values()) duplicates += s.times - 1
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
            const s = seen.get(m.body)
            if (!s) continue
            if (s.at >= restart) resumed = Math.min(resumed, s.at - restart)
            if (m.at < restart) caughtUp = Math.max(caughtUp, s.at - restart)
          }
        }
        // A message counts as lost when any client of this replica lacks it.
        for (const m of theirs) {
          if (node.clients.some((c) => !c.messages.some((x) => x.body === m.body))) {
            lost[window(m.at)]++
            lostBodies.push(`${m.body}@${m.at - mark("kill")}ms`)
          }
        }
        const outage = theirs.filter((m) => window(m.at) === "outage").length
        Object.assign(out, {
          [`${name}_from_${from}_posted`]: theirs.length,
          [`${name}_from_${from}_posted_outage`]: outage,
          [`${name}_lost_before`]: lost.before,
          [`${name}_lost_outage`]: lost.outage,
          [`${name}_lost_after`]: lost.after,
          [`${name}_lost_local`]: lostLocal,
          [`${name}_duplicates`]: duplicates,
          [`${name}_out_of_order`]: outOfOrder,
          [`${name}_resumed_ms`]: resumed === Infinity ? "none" : resumed,
          [`${name}_caught_up_ms`]: caughtUp === -Infinity ? "none" : caughtUp,
        })
        if (lostBodies.length) note(`replica ${name} never got: ${lostBodies.join(" ")} (times after the kill)`)
      }
      out.outage_ms = mark("restart") - mark("kill")
      return out
    },
  },
  () => Object.values(nodes).flatMap((node) => node.clients),
)
