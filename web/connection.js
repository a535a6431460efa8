// Watching a page's sockets: a refused token ends the session (the page says
// why), a busy or rate-limited server is tried again later, and a socket the
// server dropped reconnects once to learn why.

import { refusalOf } from "/static/common.js";
import { t } from "/static/i18n.js";

/**
 * @param sockets {namespace: socket} of the page
 * @param notices the page's Notices
 * @param busyText what to say while the server is unavailable (a sentence in the page's language)
 * @param onRefused called with {code, message, serverMessage} when the server refuses the token
 * @param over true when the page is done (no more reconnecting)
 */
export function watchSockets(sockets, { notices, busyText, onRefused, over = () => false }) {
  for (const socket of Object.values(sockets)) {
    socket.on("connect_error", (err) => {
      const refusal = refusalOf(socket, err);
      if (!refusal) return; // a network problem: the client retries by itself
      if (refusal.code === "unavailable" || refusal.code === "rate_limited") {
        const busy = refusal.code === "unavailable";
        const text = busy ? t("sockets.busy", { text: busyText }) : t("sockets.rate_limited");
        notices.show(text, { kind: busy ? "info" : "error", key: "unavailable" });
        setTimeout(() => socket.connect(), busy ? 3000 : 15000);
        return;
      }
      onRefused(refusal);
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io server disconnect" && !over()) setTimeout(() => socket.connect(), 500);
    });
  }
}
