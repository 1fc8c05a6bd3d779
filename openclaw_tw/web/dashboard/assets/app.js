// The dashboard's shell: credentials, the one gateway connection, its state line, and the
// views (one module each) switched by the URL fragment (#/chat ...).

import { Gateway } from "./gateway.js";
import { errorText } from "./dom.js";
import * as overview from "./overview.js";
import * as chat from "./chat.js";
import * as approvals from "./approvals.js";
import * as automations from "./automations.js";
import * as logs from "./logs.js";

const VIEWS = { overview, chat, approvals, automations, logs };
const HELLO_ORDER = [chat, overview, approvals, automations, logs];  // chat's requests first
const DEFAULT_VIEW = "chat";
const AUTH_KEY = "openclaw-tw.dashboard.auth";  // sessionStorage: this tab only
const $ = (id) => document.getElementById(id);

function readAuth() {
  try {
    const auth = JSON.parse(sessionStorage.getItem(AUTH_KEY) || "null");
    if (auth && (auth.kind === "token" || auth.kind === "password") && auth.secret) return auth;
  } catch {
    // ignore a damaged entry
  }
  return null;
}

function saveAuth(auth) {
  if (auth) sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
  else sessionStorage.removeItem(AUTH_KEY);
}

// A "#token=…" (or "#password=…") in the URL, as `openclaw dashboard` hands out: taken, then
// stripped from the address bar and history.
function takeFragmentSecret() {
  const hash = location.hash.replace(/^#/, "");
  if (hash.startsWith("/") || !hash.includes("=")) return;
  const params = new URLSearchParams(hash);
  const token = params.get("token");
  const password = params.get("password");
  if (token) saveAuth({ kind: "token", secret: token });
  else if (password) saveAuth({ kind: "password", secret: password });
  history.replaceState(null, "", location.pathname + location.search);
}

function wsUrl() {
  const base = document.documentElement.dataset.openclawControlUiBasePath || "";
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${base}/`;
}

const app = {
  gateway: null,
  hello: null,
  report: (err) => showState({ state: "error", message: errorText(err) }),
  request: (method, params) => app.gateway.request(method, params),
};

function showState(s) {
  const line = $("conn-state");
  const stateText = {
    connecting: () => (s.attempt ? `Reconnecting (attempt ${s.attempt + 1})…` : "Connecting…"),
    open: () => `Connected to ${s.hello.server && s.hello.server.version ? `OpenClaw ${s.hello.server.version}` : "the gateway"}`,
    offline: () => `Connection lost (${s.message || "closed"}) — retrying in ${Math.ceil(s.retryInMs / 1000)} s`,
    pairing: () => `This browser is waiting for approval as a device${s.requestId ? ` (request ${s.requestId})` : ""}: approve it from a paired client, e.g. openclaw-tw devices approve. Retrying…`,
    refused: () => (s.noIdentity && s.code === "CONTROL_UI_DEVICE_IDENTITY_REQUIRED"
      ? "This browser cannot make a device identity here (it needs HTTPS or localhost): open the dashboard over HTTPS or from the gateway host."
      : `Refused: ${s.message}`),
    error: () => `Error: ${s.message}`,
  }[s.state];
  line.textContent = stateText ? stateText() : s.state;
  document.body.dataset.conn = s.state === "error" ? document.body.dataset.conn : s.state;
  if (s.state === "refused" && /^AUTH_/.test(s.code || "")) {
    saveAuth(null);
    showLogin(s.message);
  }
}

function showLogin(message) {
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  for (const view of Object.keys(VIEWS)) $(`view-${view}`).hidden = true;
  $("logout").hidden = true;
  $("login-secret").focus();
}

function route() {
  const name = location.hash.replace(/^#\/?/, "");
  const view = VIEWS[name] ? name : DEFAULT_VIEW;
  if (!$("login").hidden) return;
  for (const key of Object.keys(VIEWS)) {
    $(`view-${key}`).hidden = key !== view;
    const link = document.querySelector(`a[data-view="${key}"]`);
    if (key === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [key, mod] of Object.entries(VIEWS)) if (mod.visible) mod.visible(key === view);
}

function connect(auth) {
  $("login").hidden = true;
  $("logout").hidden = false;
  const secret = auth ? { [auth.kind]: auth.secret } : {};
  app.gateway = new Gateway({
    url: wsUrl(),
    auth: secret,
    onState: showState,
    onHello: (hello) => {
      app.hello = hello;
      for (const mod of HELLO_ORDER) mod.hello(hello);
    },
    onEvent: (name, payload) => {
      for (const mod of Object.values(VIEWS)) if (mod.event) mod.event(name, payload);
    },
  });
  route();
  app.gateway.start();
}

function boot() {
  takeFragmentSecret();
  for (const [key, mod] of Object.entries(VIEWS)) mod.mount($(`view-${key}`), app);
  window.addEventListener("hashchange", route);
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const auth = { kind: $("login-kind").value, secret: $("login-secret").value.trim() };
    if (!auth.secret) return;
    $("login-secret").value = "";
    saveAuth(auth);
    connect(auth);
  });
  $("logout").addEventListener("click", () => {
    saveAuth(null);
    if (app.gateway) app.gateway.stop();
    showState({ state: "logged out" });
    $("conn-state").textContent = "Logged out";
    showLogin("");
  });
  const auth = readAuth();
  if (auth) connect(auth);
  else showLogin("");
}

boot();
