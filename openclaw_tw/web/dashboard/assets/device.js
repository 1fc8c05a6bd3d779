// This browser's device identity: an Ed25519 key pair made with WebCrypto (secure contexts
// only: https, or http on localhost), kept in localStorage, so a remote browser pairs like
// any other device. The device id is the hex SHA-256 of the raw public key; the signature
// covers the v3 payload (see the gateway protocol's device proof).

const STORE = "openclaw-tw.dashboard.device.v1";
const TOKENS = "openclaw-tw.dashboard.deviceTokens.v1";

export function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

async function hex256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fromStored(stored) {
  const privateKey = await crypto.subtle.importKey("jwk", stored.privateJwk,
    { name: "Ed25519" }, false, ["sign"]);
  return { deviceId: stored.deviceId, publicKey: stored.publicKey, privateKey };
}

// The identity, or null where the browser cannot make one (then the gateway refuses a
// browser UI connect with CONTROL_UI_DEVICE_IDENTITY_REQUIRED, which we show).
export async function loadIdentity() {
  if (!window.isSecureContext || !crypto.subtle) return null;
  try {
    const stored = JSON.parse(localStorage.getItem(STORE) || "null");
    if (stored && stored.deviceId && stored.publicKey && stored.privateJwk) {
      return await fromStored(stored);
    }
  } catch {
    // unreadable: make a new one
  }
  try {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
    const raw = await crypto.subtle.exportKey("raw", pair.publicKey);
    const stored = {
      deviceId: await hex256(raw),
      publicKey: b64url(raw),
      privateJwk: await crypto.subtle.exportKey("jwk", pair.privateKey),
    };
    localStorage.setItem(STORE, JSON.stringify(stored));
    return await fromStored(stored);
  } catch {
    return null;
  }
}

export async function signConnect(identity, params, token, nonce, signedAt) {
  const c = params.client;
  const payload = ["v3", identity.deviceId, c.id, c.mode, params.role, params.scopes.join(","),
    String(signedAt), token || "", nonce, (c.platform || "").toLowerCase(),
    (c.deviceFamily || "").toLowerCase()].join("|");
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, identity.privateKey,
    new TextEncoder().encode(payload));
  return { id: identity.deviceId, publicKey: identity.publicKey, signature: b64url(sig),
    signedAt, nonce };
}

export function deviceToken(deviceId) {
  try {
    return (JSON.parse(localStorage.getItem(TOKENS) || "{}") || {})[deviceId] || null;
  } catch {
    return null;
  }
}

export function saveDeviceToken(deviceId, token) {
  let all = {};
  try {
    all = JSON.parse(localStorage.getItem(TOKENS) || "{}") || {};
  } catch {
    all = {};
  }
  if (token) all[deviceId] = token;
  else delete all[deviceId];
  localStorage.setItem(TOKENS, JSON.stringify(all));
}
