// The gateway's WebSocket protocol: connect.challenge -> connect (with this browser's device
// proof) -> hello-ok, then req/res and events. A lost connection reconnects with backoff.

import { deviceToken, loadIdentity, saveDeviceToken, signConnect } from "./device.js";

const SCOPES = ["operator.admin", "operator.read", "operator.write", "operator.approvals",
  "operator.questions", "operator.pairing"];
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const REQUEST_TIMEOUT_MS = 30000;
// Answers after which retrying cannot help until the operator changes something.
const FATAL = new Set(["AUTH_TOKEN_MISMATCH", "AUTH_TOKEN_MISSING", "AUTH_PASSWORD_MISMATCH",
  "AUTH_PASSWORD_MISSING", "AUTH_TOKEN_NOT_CONFIGURED", "AUTH_PASSWORD_NOT_CONFIGURED",
  "AUTH_DEVICE_TOKEN_MISMATCH", "AUTH_SCOPE_MISMATCH", "CONTROL_UI_ORIGIN_NOT_ALLOWED",
  "CONTROL_UI_DEVICE_IDENTITY_REQUIRED", "DEVICE_IDENTITY_REQUIRED"]);

export class GatewayError extends Error {
  constructor(error) {
    super((error && error.message) || "request failed");
    this.code = (error && error.code) || "UNAVAILABLE";
    this.details = error && error.details;
  }
}

export class Gateway {
  // url: the WebSocket URL; auth: {token} | {password} | {}; onState({state, ...}); onEvent(name, payload)
  constructor({ url, auth, onState, onEvent, onHello }) {
    Object.assign(this, { url, auth, onState, onEvent, onHello });
    this.pending = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.hello = null;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "logout");
  }

  get connected() {
    return this.hello !== null && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  open() {
    clearTimeout(this.timer);
    this.hello = null;
    this.onState({ state: "connecting", attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.retry({ message: String(err) });
      return;
    }
    this.ws = ws;
    this.failure = null;
    ws.onmessage = (e) => this.receive(ws, e.data);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.hello = null;
      for (const { reject, timer } of this.pending.values()) {
        clearTimeout(timer);
        reject(new GatewayError({ code: "UNAVAILABLE", message: "connection lost" }));
      }
      this.pending.clear();
      if (this.stopped) return;
      const failure = this.failure;
      if (failure && failure.fatal) {
        this.onState({ state: "refused", ...failure });
        return;
      }
      this.retry(failure || { message: e.reason || `closed (${e.code})` });
    };
  }

  retry(why) {
    if (this.stopped) return;
    const base = why.pairing ? 3000 : BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.onState({ state: why.pairing ? "pairing" : "offline", retryInMs: delay,
      attempt: this.attempt, ...why });
    this.timer = setTimeout(() => this.open(), delay);
  }

  async receive(ws, data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === "event") {
      if (frame.event === "connect.challenge") {
        performance.mark("dashboard:challenge");
        await this.connect(ws, frame.payload || {});
      } else if (this.hello) {
        this.onEvent(frame.event, frame.payload);
      }
    } else if (frame.type === "res") {
      const call = this.pending.get(frame.id);
      if (!call) return;
      this.pending.delete(frame.id);
      clearTimeout(call.timer);
      if (frame.ok) call.resolve(frame.payload);
      else call.reject(new GatewayError(frame.error));
    }
  }

  async connect(ws, challenge) {
    const params = {
      minProtocol: 4, maxProtocol: 4,
      client: { id: "openclaw-control-ui", version: "dashboard",
        platform: navigator.platform || "web", mode: "webchat" },
      role: "operator", scopes: SCOPES, caps: [],
    };
    const identity = await loadIdentity();
    const auth = { ...this.auth };
    const stored = identity && !auth.token && !auth.password ? deviceToken(identity.deviceId)
      : null;
    if (stored) auth.deviceToken = stored;
    if (Object.keys(auth).length) params.auth = auth;
    if (identity && typeof challenge.nonce === "string") {
      const ts = Number.isFinite(challenge.ts) ? challenge.ts : Date.now();
      // the signed token is auth.token, else the device token (never a password)
      params.device = await signConnect(identity, params, auth.token || auth.deviceToken,
        challenge.nonce, ts);
    }
    if (ws !== this.ws) return;
    performance.mark("dashboard:connect-sent");
    try {
      const hello = await this.send(ws, "connect", params);
      performance.mark("dashboard:hello");
      this.hello = hello;
      this.attempt = 0;
      if (identity && hello.auth && hello.auth.deviceToken) {
        saveDeviceToken(identity.deviceId, hello.auth.deviceToken);
      }
      this.onState({ state: "open", hello });
      this.onHello(hello);
    } catch (err) {
      const code = (err.details && err.details.code) || err.code;
      if (stored && code === "AUTH_DEVICE_TOKEN_MISMATCH") saveDeviceToken(identity.deviceId, null);
      this.failure = {
        message: err.message, code,
        fatal: FATAL.has(code) || (/^DEVICE_AUTH_/.test(code) && code !== "DEVICE_AUTH_NONCE_MISMATCH"),
        pairing: code === "PAIRING_REQUIRED",
        requestId: err.details && err.details.requestId,
        deviceId: identity && identity.deviceId,
        noIdentity: !identity,
      };
    }
  }

  send(ws, method, params) {
    return new Promise((resolve, reject) => {
      const id = `${this.nextId++}:${crypto.randomUUID ? crypto.randomUUID() : Date.now()}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new GatewayError({ code: "UNAVAILABLE", message: `${method}: no answer` }));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }

  request(method, params = {}) {
    if (!this.connected) {
      return Promise.reject(new GatewayError({ code: "UNAVAILABLE", message: "not connected" }));
    }
    return this.send(this.ws, method, params);
  }
}
