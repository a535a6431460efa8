// Shared by the patient and staff pages: the token, the sockets, acknowledged
// requests, small DOM helpers and plain-language formatting.

import { Manager } from "/static/vendor/socket.io.esm.min.js";
import { errorText, formatUnit, formatTime, t } from "/static/i18n.js";

// -- the token -----------------------------------------------------------------

/**
 * The access token of this page. A link carries it in the fragment (#t=...),
 * which never reaches a server; it is moved into sessionStorage (so a reload
 * works) and removed from the address bar (so it is not shown or shared).
 */
export function readToken(storageKey) {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromLink = params.get("t");
  if (fromLink) {
    sessionStorage.setItem(storageKey, fromLink);
    history.replaceState(null, "", location.pathname + location.search);
    return fromLink;
  }
  return sessionStorage.getItem(storageKey);
}

export function storeToken(storageKey, token) {
  sessionStorage.setItem(storageKey, token);
}

export function forgetToken(storageKey) {
  sessionStorage.removeItem(storageKey);
}

/** A token pasted as is, or a whole link whose fragment holds it. */
export function tokenFromInput(text) {
  const value = text.trim();
  const hash = value.indexOf("#");
  if (hash >= 0) {
    return new URLSearchParams(value.slice(hash + 1)).get("t") || "";
  }
  return value;
}

/**
 * The claims of a token, read without checking the signature (the server
 * checks it). Used only to choose what to show; null when unreadable.
 */
export function readClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

// -- sockets -------------------------------------------------------------------

/** One Manager (one websocket) carrying every namespace the page opens. */
export function openSockets(token, namespaces) {
  const manager = new Manager(location.origin, {
    transports: ["websocket"],
    reconnectionDelay: 1000,
    reconnectionDelayMax: 5000,
  });
  const sockets = {};
  for (const ns of namespaces) {
    sockets[ns] = manager.socket(ns, { auth: { token } });
  }
  return { manager, sockets };
}

/**
 * A refusal from the server. `message` is in the page's language (i18n.js
 * errorText); `serverMessage` keeps the server's own English words.
 */
export class ServerError extends Error {
  constructor(code, serverMessage, details) {
    super(errorText({ code, details, serverMessage }));
    this.code = code;
    this.serverMessage = serverMessage || "";
    this.details = details;
  }
}

/**
 * Emit an event and wait for its acknowledgement. Resolves with the reply
 * ({ok: true, ...}); rejects with a ServerError carrying the server's
 * {code, message}, or code "timeout" when no answer came in time.
 */
export function request(socket, event, payload = {}, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, payload, (err, reply) => {
      if (err) {
        reject(new ServerError("timeout", ""));
      } else if (!reply || reply.ok !== true) {
        const e = (reply && reply.error) || {};
        reject(new ServerError(e.code || "error", e.message || "", e.details));
      } else {
        resolve(reply);
      }
    });
  });
}

/**
 * Why the server refused a connection, as {code, message} (message in the
 * page's language, serverMessage the server's); null when the error was the
 * network's (the client then keeps retrying on its own).
 */
export function refusalOf(socket, err) {
  if (socket.active) return null;
  const data = err && err.data;
  if (data && typeof data === "object" && data.code) {
    return refusal(String(data.code), String(data.message || ""), data.details);
  }
  const text = String((err && err.message) || "");
  // python-socketio sends a refusal's single argument as a string: the repr of
  // the server's {"code", "message"} dict. Read it back.
  const code = /['"]code['"]:\s*(['"])(.*?)\1/.exec(text);
  const message = /['"]message['"]:\s*(['"])(.*?)\1/.exec(text);
  if (code) return refusal(code[2], message ? message[2] : "");
  return refusal("refused", text);
}

function refusal(code, serverMessage, details = undefined) {
  return { code, serverMessage, message: errorText({ code, serverMessage, details }) };
}

/** Plain-language wording of a connection state. */
export function describeConnection(state) {
  return t(`connection.${state}`);
}

/** Show the page's connection state in a status element. */
export function showConnection(el, state, text) {
  el.dataset.state = state;
  el.textContent = text || describeConnection(state);
}

// -- DOM -----------------------------------------------------------------------

/**
 * Create an element. props: attributes, plus `text`, `class`, `dataset`,
 * `on` ({event: handler}) and boolean properties (hidden, disabled...).
 * Text always goes in as text, never as HTML.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** Show one of the page's screens (sections with data-screen) and move focus to its heading. */
export function showScreen(name, { focus = true } = {}) {
  let shown = null;
  for (const section of document.querySelectorAll("[data-screen]")) {
    const match = section.dataset.screen === name;
    section.hidden = !match;
    if (match) shown = section;
  }
  if (shown && focus) {
    const heading = shown.querySelector("h1, h2");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: false });
    }
  }
  return shown;
}

/**
 * Show or hide an inline confirmation box in place of the button that asks
 * for it; focus goes to the box's last button (the safe answer) or back to
 * the button.
 */
export function toggleConfirm(boxSel, buttonSel, show, { focus = true } = {}) {
  $(boxSel).hidden = !show;
  $(buttonSel).hidden = show;
  if (focus) $(show ? `${boxSel} .btn:last-child` : buttonSel).focus();
}

/**
 * A message area for errors and notices (never alert()). Messages can be
 * dismissed; one with a key replaces the previous message with that key.
 */
export class Notices {
  constructor(el) {
    this.el = el;
  }

  show(text, { kind = "error", key = null } = {}) {
    if (key) this.clear(key);
    const item = h(
      "div",
      { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status", dataset: { key: key || "" } },
      h("p", { text }),
      h("button", {
        type: "button",
        class: "notice-close",
        "aria-label": t("notice.dismiss"),
        text: "×",
        on: { click: () => item.remove() },
      }),
    );
    this.el.append(item);
    // Confirmations fade on their own; errors stay until dismissed or resolved.
    if (kind === "info") setTimeout(() => item.remove(), 8000);
    return item;
  }

  error(err, key = null) {
    const text = err instanceof Error ? err.message : String(err);
    return this.show(text, { kind: "error", key });
  }

  clear(key = null) {
    for (const item of [...this.el.children]) {
      if (key === null || item.dataset.key === key) item.remove();
    }
  }
}

// -- HTTP routes ---------------------------------------------------------------------

/**
 * Call an HTTP route with the staff token (JSON in, JSON or text out).
 * Resolves to {ok, status, data}: data is the parsed JSON (or the text with
 * {text: true}; null when the body is not JSON). Rejects only when the server
 * cannot be reached, with a sentence a person can act on; each caller words
 * the refusals of its own routes.
 */
export async function callRoute(token, method, url, body = undefined, { text = false } = {}) {
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new Error(t("error.unreachable"));
  }
  const raw = await response.text().catch(() => "");
  let data = null;
  if (text && response.ok) {
    data = raw;
  } else {
    try {
      data = JSON.parse(raw);
    } catch {
      data = null;
    }
  }
  return { ok: response.ok, status: response.status, data };
}

// -- formatting ------------------------------------------------------------------

/** "4 min", "1 hr, 5 min" (in the page's language): how long since a time in epoch seconds. */
export function formatElapsed(sinceSeconds, now = Date.now() / 1000) {
  if (!sinceSeconds) return "";
  const minutes = Math.max(0, Math.floor((now - sinceSeconds) / 60));
  if (minutes < 60) return formatUnit(minutes, "minute", "short");
  return t("time.hours_minutes", { hours: formatUnit(Math.floor(minutes / 60), "hour", "short"), minutes: formatUnit(minutes % 60, "minute", "short") });
}

/** Local clock time of an epoch-seconds value. */
export function formatClock(seconds) {
  if (!seconds) return "";
  return formatTime(new Date(seconds * 1000));
}

/** An id the server accepts ([A-Za-z0-9_.-]{1,64}); works on plain http too. */
export function randomId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The name of an ESI level (1–5) in the page's language. */
export function esiName(level) {
  return t(`esi.${level}`);
}

/** The name of a visit state ("waiting", "in_visit"…) in the page's language. */
export function stateName(state) {
  return t(`state.${state}`);
}
