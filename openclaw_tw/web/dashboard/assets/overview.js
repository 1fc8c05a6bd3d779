// Overview: the gateway's health, version and uptime, who is connected (presence), channel
// accounts, nodes and event-loop lag -- kept live by the gateway's events.

import { duration, h, replace, table, text, time } from "./dom.js";

let app;
let root;
const state = { hello: null, health: null, presence: [], channels: null, nodes: [], bootAt: 0 };
let ticker = null;

export function mount(el, ctx) {
  app = ctx;
  root = el;
  render();
}

export function hello(hello) {
  const snap = hello.snapshot || {};
  state.hello = hello;
  state.presence = snap.presence || [];
  state.health = snap.health || state.health;
  state.bootAt = Date.now() - (snap.uptimeMs || 0);
  render();
  refresh("health", {}, (v) => { state.health = v; });
  refreshChannels();
  refreshNodes();
  clearInterval(ticker);
  ticker = setInterval(renderUptime, 1000);
}

function refresh(method, params, store) {
  app.request(method, params).then((v) => { store(v); render(); }, () => {});
}

function refreshChannels() {
  refresh("channels.status", {}, (v) => { state.channels = v; });
}

function refreshNodes() {
  refresh("node.list", {}, (v) => { state.nodes = (v && v.nodes) || []; });
}

export function event(name, payload) {
  if (name === "presence") {
    state.presence = (payload && payload.presence) || [];
  } else if (name === "health") {
    state.health = payload;
    refreshChannels();
  } else if (name.startsWith("node.")) {
    if (name === "node.pair.resolved" || name === "node.presence") refreshNodes();
    return;
  } else {
    return;
  }
  render();
}

function renderUptime() {
  const el = root.querySelector("[data-uptime]");
  if (el && state.bootAt) el.textContent = duration(Date.now() - state.bootAt);
}

function stat(label, value, attrs = {}) {
  return h("div", { class: "stat" }, h("dt", {}, label), h("dd", attrs, value));
}

function render() {
  if (!root) return;
  const server = (state.hello && state.hello.server) || {};
  const health = state.health || {};
  const loop = health.eventLoop || {};
  const channels = state.channels || {};
  const accounts = [];
  for (const [channel, list] of Object.entries(channels.channelAccounts || {})) {
    for (const acc of list || []) accounts.push({ channel, ...acc });
  }
  replace(root,
    h("h2", {}, "Overview"),
    h("dl", { class: "stats" },
      stat("Health", state.health ? (health.ok ? "OK" : "Degraded") : "—",
        { class: health.ok === false ? "bad" : "good" }),
      stat("Version", text(server.version) || "—"),
      stat("Uptime", state.bootAt ? duration(Date.now() - state.bootAt) : "—",
        { "data-uptime": "" }),
      stat("Event-loop lag (p99)", typeof loop.delayP99Ms === "number"
        ? `${Math.round(loop.delayP99Ms)} ms` : "—", { class: loop.degraded ? "bad" : "" }),
      stat("Event-loop lag (max)", typeof loop.delayMaxMs === "number"
        ? `${Math.round(loop.delayMaxMs)} ms` : "—"),
      stat("Sessions", health.sessions ? text(health.sessions.count) : "—")),
    h("h3", {}, "Connected"),
    table("Presence", [
      { label: "Who", cell: (p) => text(p.host || p.deviceId || p.instanceId) },
      { label: "Mode", cell: (p) => text(p.mode) },
      { label: "Platform", cell: (p) => text(p.platform) },
      { label: "Address", cell: (p) => text(p.ip) },
      { label: "Since", cell: (p) => time(p.ts) },
    ], state.presence, "Nobody is connected."),
    h("h3", {}, "Channel accounts"),
    table("Channel accounts", [
      { label: "Channel", cell: (a) => text(a.channel) },
      { label: "Account", cell: (a) => text(a.accountId) },
      { label: "State", cell: (a) => (a.connected ? "connected" : a.running ? "running"
        : a.enabled === false ? "disabled" : "stopped") },
      { label: "Last error", cell: (a) => text(a.lastError) },
    ], accounts, "No channel accounts are configured."),
    h("h3", {}, "Nodes"),
    table("Nodes", [
      { label: "Node", cell: (n) => text(n.displayName || n.nodeId) },
      { label: "Platform", cell: (n) => text(n.platform) },
      { label: "Connected", cell: (n) => (n.connected ? "yes" : "no") },
      { label: "Commands", cell: (n) => text((n.commands || []).join(", ")) },
    ], state.nodes, "No nodes are paired or connected."));
}
