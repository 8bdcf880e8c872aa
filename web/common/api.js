// Shared helpers for the pages: the JSON API, the Socket.IO connection, small DOM helpers.
// Plain ES module, no build step. Text from the server is always set with textContent.

import { io } from "/vendor/socket.io.esm.min.js";

/** An error answered by the server ({"error": {code, message, details}}) or by the network. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// A proxy or load balancer in front of the server answers these itself, without consult's
// JSON error (consult's own 503 says database_unavailable, with its own message).
const UNANSWERED = {
  502: "The service cannot be reached just now. Please try again in a moment.",
  503: "The service is briefly unavailable. Please try again in a moment.",
  504: "The service did not answer in time. Please try again in a moment.",
};

/** A message for the user about what they entered (shown, not logged as a bug). */
export const userError = (message) => new ApiError(0, "invalid_input", message);

/**
 * Calls the JSON API with the session cookie; resolves to the body, rejects with ApiError.
 * body: a value sent as JSON, or FormData sent as multipart/form-data (an upload); headers:
 * more request headers (e.g. an Idempotency-Key).
 */
export async function api(method, path, body, headers = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...headers },
  };
  if (body instanceof FormData) {
    init.body = body; // the browser sets the multipart Content-Type, with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || "http_" + response.status,
      error.message || UNANSWERED[response.status] || `The server answered ${response.status}.`,
      error.details,
    );
  }
  return data;
}

/** The logged-in user, or null when there is no valid session. The probe answers 200 either
 * way: a 401 would be logged in the console on every logged-out page load. */
export async function currentUser() {
  const { user } = await api("GET", "/api/session");
  return user;
}

export const login = (email, password) => api("POST", "/api/login", { email, password });
export const loginTotp = (challenge, code) => api("POST", "/api/login/totp", { challenge, code });
export const logout = () => api("POST", "/api/logout");

/**
 * Opens the Socket.IO connection; the session cookie authenticates it. A new connection each
 * time (forceNew), so a new login never reuses the previous user's connection.
 */
export function connectSocket() {
  return io({ transports: ["websocket"], forceNew: true });
}

/**
 * Emits an event and waits for its ack ({ok, data} | {ok: false, error}).
 * Resolves to data; rejects with ApiError (a timeout too).
 */
export async function emitAck(socket, event, payload, timeoutMs = 10000) {
  let reply;
  try {
    reply = await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch {
    throw new ApiError(0, "timeout", "The server did not answer in time. Please try again.");
  }
  if (reply && reply.ok) return reply.data;
  const error = (reply && reply.error) || {};
  // details carry what a page acts on (e.g. rate_limited's retry_after).
  throw new ApiError(
    0,
    error.code || "error",
    error.message || "The request failed.",
    error.details,
  );
}

/** A random id for a chat message, so a retry is not stored twice. */
export function newClientId() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const parts = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20)];
  return [...parts, hex.slice(20)].join("-");
}

/**
 * Creates an element. attrs: plain attributes, plus `text` (textContent), `className`,
 * `dataset` (object) and `on` (object of event listeners). Children: nodes or strings (as text).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") {
      for (const [name, listener] of Object.entries(value)) node.addEventListener(name, listener);
    }
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function show(node, visible = true) {
  node.hidden = !visible;
}

export function formatTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatDateTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** The page's error banner (an element with role="alert"): shows a message, or hides. */
export class ErrorBanner {
  constructor(node) {
    this.node = node;
    this.text = node.querySelector("[data-role=text]");
    node.querySelector("button").addEventListener("click", () => this.clear());
  }
  show(err) {
    const message = err instanceof Error ? err.message : String(err);
    // A bug (not an answer from the server, nor a message for the user) also goes to the console.
    if (err instanceof Error && !(err instanceof ApiError)) console.error(err);
    // Server messages start in lower case ("wrong email or password"): make it a sentence.
    this.text.textContent = message.charAt(0).toUpperCase() + message.slice(1);
    this.node.hidden = false;
  }
  clear() {
    this.text.textContent = "";
    this.node.hidden = true;
  }
}

/** Runs an action from a button: disables it meanwhile, shows any error in the banner. */
export async function guarded(banner, button, action) {
  banner.clear();
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    banner.show(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Keeps a small "live connection" indicator in step with the socket. */
export function bindConnectionIndicator(socket, node, onRefused) {
  const set = (state, text) => {
    node.dataset.state = state;
    node.textContent = text;
    node.hidden = false;
  };
  set("connecting", "Connecting…");
  socket.on("connect", () => set("on", "Live"));
  socket.on("disconnect", () => set("connecting", "Reconnecting…"));
  socket.on("connect_error", (err) => {
    if (socket.active) {
      set("connecting", "Reconnecting…");
    } else if (err.data && err.data.code === "database_unavailable") {
      // Refused for a moment, not for good: try again when the server says.
      set("connecting", "Reconnecting…");
      const seconds = (err.data.details && err.data.details.retry_after) || 5;
      setTimeout(() => socket.connect(), 1000 * seconds);
    } else {
      // Refused by the server (e.g. the session expired): it will not retry on its own.
      set("off", "Offline");
      onRefused(err);
    }
  });
}
