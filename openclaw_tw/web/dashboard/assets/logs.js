// Logs: a live tail of the gateway's log file (logs.tail from a cursor, every 2 s while the
// view is shown), filtered by level. At most MAX_LINES stay on the page.

import { errorText, h, replace, text } from "./dom.js";

const POLL_MS = 2000;
const MAX_LINES = 1000;
const LEVELS = ["debug", "info", "warn", "error"];
let app;
let el = {};
let cursor = null;
let lines = [];
let timer = null;
let shown = false;
let busy = false;

export function mount(root, ctx) {
  app = ctx;
  el.level = h("select", { id: "log-level", onchange: render },
    LEVELS.map((l) => h("option", { value: l, selected: l === "info" }, `${l} and above`)));
  el.list = h("ol", { id: "log-lines", class: "log-lines", "aria-label": "Log lines" });
  el.status = h("p", { class: "muted", role: "status", id: "log-status" }, "");
  replace(root,
    h("h2", {}, "Logs"),
    h("div", { class: "row" }, h("label", { for: "log-level" }, "Level"), el.level),
    el.status, el.list);
}

export function hello() {
  cursor = null;
  if (shown) poll();
}

export function visible(isShown) {
  shown = isShown;
  clearTimeout(timer);
  if (shown) poll();
}

function parse(line) {
  try {
    const obj = JSON.parse(line);
    if (obj && typeof obj === "object") {
      return { time: text(obj.time), level: String(obj.level || "info").toLowerCase(),
        subsystem: text(obj.subsystem), message: text(obj.message) };
    }
  } catch {
    // a plain text line
  }
  return { time: "", level: "info", subsystem: "", message: line };
}

async function poll() {
  clearTimeout(timer);
  if (!shown || busy) return;
  if (app.gateway && app.gateway.connected) {
    busy = true;
    try {
      const params = { limit: 500, maxBytes: 250000 };
      if (cursor !== null) params.cursor = cursor;
      const res = await app.request("logs.tail", params);
      if (res.reset) lines = [];
      cursor = res.cursor;
      lines = lines.concat((res.lines || []).map(parse)).slice(-MAX_LINES);
      el.status.textContent = res.file ? `Following ${res.file}` : "";
      render();
    } catch (err) {
      el.status.textContent = errorText(err);
    } finally {
      busy = false;
    }
  }
  timer = setTimeout(poll, POLL_MS);
}

function render() {
  const min = LEVELS.indexOf(el.level.value);
  const keep = lines.filter((l) => {
    const i = LEVELS.indexOf(l.level === "warning" ? "warn" : l.level);
    return i === -1 || i >= min;
  });
  const atBottom = el.list.scrollTop + el.list.clientHeight >= el.list.scrollHeight - 20;
  replace(el.list, keep.map((l) => h("li", { class: `lvl-${l.level}` },
    h("span", { class: "t" }, l.time.replace("T", " ").replace(/\.\d+Z$/, "Z")), " ",
    h("span", { class: "l" }, l.level), " ",
    l.subsystem ? h("span", { class: "s" }, l.subsystem) : "", " ", l.message)));
  if (atBottom) el.list.scrollTop = el.list.scrollHeight;
}
