// The live dashboard: a sample and the status arrive once a second on the dashboard's channel.
// Everything is served under the mount, so URLs are relative to this module.

import { Socket } from "./client.js";

const WINDOW_MS = 60 * 1000;

// label, sample key, unit, how to format, and an optional second line.
const TILES = [
  { key: "requests_per_sec", label: "Requests / s", sub: (s) => `${fmtInt(s.requests)} total` },
  { key: "latency_p50_ms", label: "Latency p50", unit: "ms" },
  { key: "latency_p90_ms", label: "Latency p90", unit: "ms" },
  { key: "latency_p99_ms", label: "Latency p99", unit: "ms" },
  { key: "connections", label: "Open connections" },
  { key: "sockets", label: "Sockets" },
  { key: "channels", label: "Joined channels" },
  { key: "broadcasts_per_sec", label: "Broadcasts / s" },
  { key: "deliveries_per_sec", label: "Deliveries / s" },
  { key: "restarts", label: "Restarts", alert: true },
  { key: "panics", label: "Panics caught", alert: true },
  { key: "memory_mb", label: "Memory (RSS)", unit: "MB" },
];

const CHARTS = [
  { title: "Requests per second", series: [["requests_per_sec", "req/s", "#4f46e5"]], area: true },
  { title: "Latency (ms)", series: [["latency_p50_ms", "p50", "#10b981"], ["latency_p90_ms", "p90", "#f59e0b"], ["latency_p99_ms", "p99", "#ef4444"]] },
  { title: "Connections", series: [["connections", "HTTP", "#0ea5e9"], ["sockets", "sockets", "#8b5cf6"], ["channels", "channels", "#ec4899"]] },
  { title: "PubSub per second", series: [["broadcasts_per_sec", "broadcasts", "#f97316"], ["deliveries_per_sec", "deliveries", "#14b8a6"]] },
  { title: "Memory (MB)", series: [["memory_mb", "RSS", "#6366f1"]], area: true },
  { title: "Restarts and panics", series: [["restarts", "restarts", "#f59e0b"], ["panics", "panics", "#dc2626"]] },
];

const samples = [];
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function fmtInt(n) {
  return Math.round(n).toLocaleString("en-US");
}

function fmt(value) {
  if (!Number.isFinite(value)) return "–";
  if (Number.isInteger(value)) return fmtInt(value);
  if (Math.abs(value) >= 100) return fmtInt(value);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(value < 1 ? 3 : 2).replace(/\.?0+$/, "") || "0";
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// ---- tiles -----------------------------------------------------------------------------------

const tileNodes = TILES.map((tile) => {
  const node = el("div", "tile");
  node.dataset.metric = tile.key;
  const value = el("span", "value", "–");
  const sub = el("span", "sub", "");
  node.append(el("span", "label", tile.label), value, sub);
  $("tiles").append(node);
  return { tile, node, value, sub };
});

function renderTiles(sample) {
  for (const { tile, node, value, sub } of tileNodes) {
    const v = sample[tile.key];
    value.replaceChildren(fmt(v));
    if (tile.unit) value.append(el("span", "unit", tile.unit));
    sub.textContent = tile.sub ? tile.sub(sample) : "";
    node.classList.toggle("alert", Boolean(tile.alert && v > 0));
  }
}

// ---- charts ----------------------------------------------------------------------------------

// 1, 2, 5 × 10^n at or above `value`, so the scale reads naturally.
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

const W = 400;
const H = 130;

const chartNodes = CHARTS.map((chart) => {
  const node = el("div", "chart");
  const head = el("div", "chart-head");
  const legend = el("div", "legend");
  for (const [, label, color] of chart.series) {
    const item = el("span", "", label);
    item.style.setProperty("--swatch", color);
    legend.append(item);
  }
  head.append(el("h2", "", chart.title), legend);
  const plot = el("div", "plot");
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": chart.title });
  const max = el("span", "max", "");
  plot.append(svg, max, el("span", "zero", "0"));
  const axis = el("div", "axis");
  axis.append(el("span", "", "60 s ago"), el("span", "", "now"));
  node.append(head, plot, axis);
  $("charts").append(node);
  return { chart, svg, max };
});

function renderCharts() {
  const now = samples.length ? samples[samples.length - 1].at_ms : Date.now();
  const x = (at) => W - ((now - at) / WINDOW_MS) * W;
  for (const { chart, svg, max } of chartNodes) {
    const top = niceMax(Math.max(0, ...samples.flatMap((s) => chart.series.map(([key]) => s[key] || 0))));
    const y = (v) => H - 4 - (v / top) * (H - 10);
    const children = [1, 2, 3].map((i) =>
      svgEl("line", { x1: 0, x2: W, y1: (H * i) / 4, y2: (H * i) / 4, stroke: "#eef0f5", "stroke-width": 1, "vector-effect": "non-scaling-stroke" }),
    );
    for (const [key, , color] of chart.series) {
      const points = samples.map((s) => `${x(s.at_ms).toFixed(1)},${y(s[key] || 0).toFixed(1)}`);
      if (points.length === 0) continue;
      if (chart.area && points.length > 1) {
        const first = x(samples[0].at_ms).toFixed(1);
        children.push(svgEl("polygon", { points: `${first},${H} ${points.join(" ")} ${W},${H}`, fill: color, "fill-opacity": 0.12 }));
      }
      children.push(
        svgEl("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2, "stroke-linejoin": "round", "vector-effect": "non-scaling-stroke" }),
      );
    }
    svg.replaceChildren(...children);
    max.textContent = fmt(top);
  }
}

// ---- status -----------------------------------------------------------------------------------

function renderPubsub(status) {
  const { adapter, connected, details } = status.pubsub;
  const rows = [["Adapter", adapter], ["Connected", connected ? "yes" : "no"]];
  if (details && typeof details === "object") {
    for (const [key, value] of Object.entries(details)) {
      rows.push([key, Array.isArray(value) ? value.join(", ") || "none" : String(value)]);
    }
  }
  $("pubsub").replaceChildren(
    ...rows.flatMap(([key, value]) => {
      const dd = el("dd", key === "Connected" ? (connected ? "ok" : "bad") : "", value);
      dd.dataset.key = key;
      return [el("dt", "", key), dd];
    }),
  );
}

function renderNodes(status) {
  const body = $("nodes").tBodies[0];
  body.replaceChildren(
    ...status.nodes.map((node) => {
      const row = el("tr");
      row.dataset.node = node.name;
      row.append(el("td", node.local ? "local" : "", node.name), el("td", "num", fmtInt(node.presences)));
      return row;
    }),
  );
}

function treeNode(tree) {
  const list = el("ul");
  const head = el("li");
  head.dataset.supervisor = tree.name;
  head.append(el("span", "id", tree.name));
  head.append(el("span", "meta", `${tree.strategy.replaceAll("_", " ")} · ${tree.stats.restarts} restarts · ${tree.stats.panics} panics`));
  const children = el("ul");
  for (const child of tree.children) {
    const item = el("li", child.running ? "" : "stopped");
    item.dataset.child = child.id;
    item.append(el("span", "id", child.id), el("span", "meta", child.restart));
    if (child.restarts > 0) item.append(el("span", "restarts", `restarted ${child.restarts}×`));
    if (child.last_exit) item.append(el("span", "exit", child.last_exit));
    if (child.supervisor) item.append(treeNode(child.supervisor));
    children.append(item);
  }
  for (const [name, count] of tree.temporaries) {
    const item = el("li");
    item.dataset.temporary = name;
    item.append(el("span", "id", `${name} ×${fmtInt(count)}`), el("span", "meta", "temporary"));
    children.append(item);
  }
  head.append(children);
  list.append(head);
  return list;
}

function renderStatus(status) {
  if (!status) return;
  $("node").textContent = status.node;
  renderPubsub(status);
  renderNodes(status);
  $("tree").replaceChildren(treeNode(status.supervisor));
}

// ---- data ------------------------------------------------------------------------------------

function addSamples(incoming) {
  for (const sample of incoming) {
    if (samples.length && sample.at_ms <= samples[samples.length - 1].at_ms) continue;
    samples.push(sample);
  }
  const cutoff = samples.length ? samples[samples.length - 1].at_ms - WINDOW_MS : 0;
  while (samples.length && samples[0].at_ms < cutoff) samples.shift();
  const latest = samples[samples.length - 1];
  if (!latest) return;
  renderTiles(latest);
  renderCharts();
  $("updated").textContent = `updated ${new Date(latest.at_ms).toLocaleTimeString()}`;
}

function setStatus(kind, text) {
  $("status").dataset.state = kind;
  $("status").textContent = text;
}

const socket = new Socket(new URL("socket", import.meta.url).pathname);
socket.onOpen(() => setStatus("online", "Live"));
socket.onClose(() => setStatus("connecting", "Reconnecting…"));
socket.onError(() => setStatus("offline", "Offline"));
socket.connect();

const channel = socket.channel(document.body.dataset.topic, {});
channel.on("sample", ({ sample, status }) => {
  addSamples([sample]);
  renderStatus(status);
});
channel.join().receive("ok", ({ history = [], status }) => {
  addSamples(history);
  renderStatus(status);
});

renderCharts();
