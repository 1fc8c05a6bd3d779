// Approvals: pending device pairing, node pairing, DM pairing codes and exec approvals;
// approve or reject each. Kept live by the pairing and approval events.

import { action, errorText, h, replace, table, text, time } from "./dom.js";

let app;
let root;
let status;
const state = { devices: [], nodes: [], dm: [], exec: [] };
const LOADERS = {
  devices: () => app.request("device.pair.list", {}).then((r) => (r && r.pending) || []),
  nodes: () => app.request("node.pair.list", {}).then((r) => (r && r.pending) || []),
  dm: () => app.request("channels.pairing.list", {}).then((r) => (r && r.requests) || []),
  exec: () => app.request("exec.approval.list", {}).then((r) => (Array.isArray(r) ? r : [])),
};

export function mount(el, ctx) {
  app = ctx;
  root = el;
  status = h("p", { class: "muted", role: "status", id: "approvals-status" }, "");
  render();
}

function report(err) {
  status.textContent = errorText(err);
}

export function hello() {
  load(Object.keys(LOADERS));
}

async function load(kinds) {
  await Promise.all(kinds.map(async (kind) => {
    try {
      state[kind] = await LOADERS[kind]();
    } catch (err) {
      state[kind] = [];
      if (err.code !== "UNAVAILABLE") report(err);
    }
  }));
  render();
}

export function event(name) {
  if (name.startsWith("device.pair.")) load(["devices"]);
  else if (name.startsWith("node.pair.")) load(["nodes"]);
  else if (name.startsWith("exec.approval.")) load(["exec"]);
}

export function visible(shown) {
  if (shown && app.gateway && app.gateway.connected) load(["dm"]);  // no event for DM codes
}

async function act(method, params, kind) {
  status.textContent = "";
  await app.request(method, params);
  await load([kind]);
}

function buttons(approve, reject, what) {
  return h("span", { class: "actions" },
    action("Approve", approve, report, { "aria-label": `Approve ${what}` }),
    action("Reject", reject, report, { class: "danger", "aria-label": `Reject ${what}` }));
}

function render() {
  if (!root) return;
  const total = state.devices.length + state.nodes.length + state.dm.length + state.exec.length;
  const badge = document.getElementById("approvals-count");
  if (badge) {
    badge.hidden = total === 0;
    badge.textContent = String(total);
  }
  replace(root,
    h("h2", {}, "Approvals"),
    status,
    h("h3", {}, "Devices waiting to pair"),
    table("Device pairing requests", [
      { label: "Device", cell: (r) => h("code", {}, text(r.deviceId).slice(0, 16)) },
      { label: "Client", cell: (r) => `${text(r.clientId)} (${text(r.clientMode)})` },
      { label: "Platform", cell: (r) => text(r.platform) },
      { label: "From", cell: (r) => text(r.remoteIp) },
      { label: "Role / scopes", cell: (r) => `${text(r.role)}: ${(r.scopes || []).join(", ")}` },
      { label: "Asked", cell: (r) => time(r.ts) },
      { label: "", cell: (r) => buttons(
        () => act("device.pair.approve", { requestId: r.requestId }, "devices"),
        () => act("device.pair.reject", { requestId: r.requestId }, "devices"),
        `device ${text(r.deviceId).slice(0, 8)}`) },
    ], state.devices, "No device is waiting."),
    h("h3", {}, "Nodes waiting to pair"),
    table("Node pairing requests", [
      { label: "Node", cell: (r) => text(r.displayName || r.nodeId) },
      { label: "Platform", cell: (r) => text(r.platform) },
      { label: "Commands", cell: (r) => (r.commands || []).join(", ") },
      { label: "Asked", cell: (r) => time(r.ts) },
      { label: "", cell: (r) => buttons(
        () => act("node.pair.approve", { requestId: r.requestId }, "nodes"),
        () => act("node.pair.reject", { requestId: r.requestId }, "nodes"),
        `node ${text(r.displayName || r.nodeId)}`) },
    ], state.nodes, "No node is waiting."),
    h("h3", {}, "Chat senders (DM pairing codes)"),
    table("DM pairing requests", [
      { label: "Code", cell: (r) => h("code", {}, text(r.requestId)) },
      { label: "Channel", cell: (r) => `${text(r.channelLabel || r.channel)} / ${text(r.accountId)}` },
      { label: "Sender", cell: (r) => text(r.senderLabel || r.senderId) },
      { label: "Expires", cell: (r) => text(r.expiresAt) },
      { label: "", cell: (r) => {
        const key = { channel: r.channel, accountId: r.accountId, requestId: r.requestId };
        return buttons(() => act("channels.pairing.approve", key, "dm"),
          () => act("channels.pairing.dismiss", key, "dm"), `code ${text(r.requestId)}`);
      } },
    ], state.dm, "No chat sender is waiting."),
    h("h3", {}, "Commands waiting for approval"),
    table("Exec approvals", [
      { label: "Command", cell: (a) => h("code", {}, text((a.request || {}).command)) },
      { label: "Where", cell: (a) => text((a.request || {}).cwd || (a.request || {}).host) },
      { label: "Asked", cell: (a) => time(a.createdAtMs) },
      { label: "", cell: (a) => h("span", { class: "actions" },
        action("Allow once", () => act("exec.approval.resolve",
          { id: a.id, decision: "allow-once" }, "exec"), report),
        action("Always allow", () => act("exec.approval.resolve",
          { id: a.id, decision: "allow-always" }, "exec"), report),
        action("Deny", () => act("exec.approval.resolve", { id: a.id, decision: "deny" },
          "exec"), report, { class: "danger" })) },
    ], state.exec, "No command is waiting."));
}
