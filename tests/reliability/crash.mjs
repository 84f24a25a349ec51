// Node crash: COUNT clients on the victim replica and COUNT on the survivor, each joined to
// room:lobby under its own name, all connected straight to their replica, and an anonymous
// observer on the survivor. cluster.sh kills the victim with SIGKILL: its clients' presences
// must leave the survivor's list once the down period has passed, the survivor's own must stay.
// The victim's clients keep retrying its address (the client's own reconnect schedule), so
// once cluster.sh starts a new victim they come back.
//
// Usage: node crash.mjs VICTIM_URL SURVIVOR_URL, then commands on stdin:
//   start COUNT BOUND_MS   connect and join everyone; ok once the observer lists 2 × COUNT users
//   mark NAME              remember now as NAME (just before the SIGKILL, the restart)
//   gone NAME BOUND_MS     the victim's users gone from the observer's list, and from every
//                          survivor client's; times since NAME
//   back NAME BOUND_MS     the victim's clients joined again and listed by the observer
//   quit

import { client, joined, note, now, serve, until, users } from "./lib.mjs"

const [victimUrl, survivorUrl] = process.argv.slice(2)
if (!survivorUrl) throw new Error("usage: node crash.mjs VICTIM_URL SURVIVOR_URL")

const TOPIC = "room:lobby"
let onVictim = []
let onSurvivor = []
let observer = null
const marks = new Map()

const named = (list) => new Set(list.map((c) => c.user))

/** How many of `wanted` the client `c` lists, and how many users it lists that are not wanted. */
function tally(c, wanted) {
  const listed = users(c)
  const hits = listed.filter((u) => wanted.has(u)).length
  return { hits, others: listed.length - hits }
}

function since(name) {
  const t0 = marks.get(name)
  if (t0 === undefined) throw new Error(`no mark ${name}`)
  return t0
}

serve(
  {
    async start(n, boundMs) {
      const count = Number(n)
      const start = now()
      observer = client(survivorUrl, TOPIC, null)
      onVictim = Array.from({ length: count }, (_, i) => client(victimUrl, TOPIC, `crash-${i}`))
      onSurvivor = Array.from({ length: count }, (_, i) => client(survivorUrl, TOPIC, `stay-${i}`))
      const everyone = named([...onVictim, ...onSurvivor])
      const ready = () =>
        observer && joined(observer) && [...onVictim, ...onSurvivor].every(joined) &&
        tally(observer, everyone).hits === 2 * count
      if (!(await until(ready, Number(boundMs)))) {
        throw new Error(`not every client joined and listed within ${boundMs} ms (observer lists ${users(observer).length})`)
      }
      note(`${2 * count} clients joined and listed in ${now() - start} ms`)
      return { joined_ms: now() - start }
    },

    mark(name) {
      marks.set(name, now())
    },

    async gone(name, boundMs) {
      const t0 = since(name)
      const victims = named(onVictim)
      const stayers = named(onSurvivor)
      const goneFrom = (c) => tally(c, victims).hits === 0
      let observerGone = null
      const all = () => {
        if (observerGone === null && goneFrom(observer)) observerGone = now()
        return observerGone !== null && onSurvivor.every(goneFrom)
      }
      const ok = await until(all, Number(boundMs) - (now() - t0), 10)
      if (!ok) {
        throw new Error(
          `the victim's users still listed ${boundMs} ms after ${name}: the observer lists ` +
            `${tally(observer, victims).hits} of them`,
        )
      }
      const allGone = now()
      // The poll above may wake a little past its deadline, under load.
      if (allGone - t0 > Number(boundMs)) {
        throw new Error(`the victim's users left ${allGone - t0} ms after ${name}, past ${boundMs} ms`)
      }
      const kept = tally(observer, stayers).hits
      if (kept !== onSurvivor.length) {
        throw new Error(`the survivor's own users left too: ${kept} of ${onSurvivor.length} listed`)
      }
      return { gone_ms: observerGone - t0, gone_everywhere_ms: allGone - t0, survivors_kept: kept }
    },

    async back(name, boundMs) {
      const t0 = since(name)
      const everyone = named([...onVictim, ...onSurvivor])
      const ready = () =>
        onVictim.every(joined) && tally(observer, everyone).hits === everyone.size &&
        onSurvivor.every((c) => tally(c, everyone).hits === everyone.size)
      if (!(await until(ready, Number(boundMs) - (now() - t0), 10))) {
        throw new Error(
          `${onVictim.filter(joined).length} of ${onVictim.length} victim clients joined again and ` +
            `${tally(observer, everyone).hits} of ${everyone.size} users listed, ${boundMs} ms after ${name}`,
        )
      }
      return { back_ms: now() - t0 }
    },
  },
  () => [...onVictim, ...onSurvivor, observer].filter(Boolean),
)
