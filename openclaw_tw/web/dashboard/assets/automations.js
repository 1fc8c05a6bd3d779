// Automations: cron jobs with their schedule, next and last runs; run now, enable/disable.
// Kept live by the "cron" event.

import { action, duration, errorText, h, replace, table, text, time } from "./dom.js";

let app;
let root;
let status;
let jobs = [];

export function mount(el, ctx) {
  app = ctx;
  root = el;
  status = h("p", { class: "muted", role: "status", id: "cron-status" }, "");
  render();
}

function report(err) {
  status.textContent = errorText(err);
}

export function hello() {
  load();
}

export function event(name) {
  if (name === "cron") load();
}

async function load() {
  try {
    const res = await app.request("cron.list", { includeDisabled: true });
    jobs = (res && res.jobs) || [];
  } catch (err) {
    report(err);
  }
  render();
}

function schedule(s) {
  if (!s) return "—";
  if (s.kind === "every") return `every ${duration(s.everyMs).replace(/ 0s$/, "")}`;
  if (s.kind === "cron") return `cron ${text(s.expr)}${s.tz ? ` (${s.tz})` : ""}`;
  if (s.kind === "at") return `at ${text(s.at)}`;
  return text(s);
}

function last(job) {
  const st = job.state || {};
  if (!st.lastRunAtMs) return "never";
  const how = st.lastStatus || st.lastRunStatus || "";
  return `${time(st.lastRunAtMs)}${how ? ` (${how})` : ""}`;
}

async function runNow(job) {
  status.textContent = "";
  const res = await app.request("cron.run", { id: job.id, mode: "force" });
  status.textContent = res && res.ran === false ? `Not run: ${text(res.reason)}`
    : `Started ${text(job.displayName || job.name)}`;
  await load();
}

async function toggle(job) {
  status.textContent = "";
  await app.request("cron.update", { id: job.id, patch: { enabled: !job.enabled } });
  await load();
}

function render() {
  if (!root) return;
  replace(root,
    h("h2", {}, "Automations"),
    status,
    table("Cron jobs", [
      { label: "Job", cell: (j) => text(j.displayName || j.name) },
      { label: "Schedule", cell: (j) => schedule(j.schedule) },
      { label: "Enabled", cell: (j) => (j.enabled ? "yes" : "no") },
      { label: "Next run", cell: (j) => (j.enabled ? time((j.state || {}).nextRunAtMs || j.nextRunAtMs) : "—") },
      { label: "Last run", cell: (j) => last(j) },
      { label: "", cell: (j) => h("span", { class: "actions" },
        action("Run now", () => runNow(j), report,
          { "aria-label": `Run ${text(j.displayName || j.name)} now` }),
        action(j.enabled ? "Disable" : "Enable", () => toggle(j), report,
          { "aria-label": `${j.enabled ? "Disable" : "Enable"} ${text(j.displayName || j.name)}` })) },
    ], jobs, "No cron jobs."));
}
