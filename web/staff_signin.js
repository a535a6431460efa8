// Signing in to the staff page: a staff token (or a staff link) pasted into
// the sign-in form is kept in this tab's sessionStorage; signing out forgets it.

import { $, forgetToken, readClaims, showConnection, showScreen, storeToken, tokenFromInput } from "/static/common.js";
import { t } from "/static/i18n.js";

export function showSignIn(message = "") {
  $("#signin-error").textContent = message;
  $("#signin-error").hidden = !message;
  showConnection($("#connection"), "closed", t("signin.not_signed_in"));
  showScreen("signin");
}

/**
 * @param tokenKey the sessionStorage key of the staff token
 * @param onToken called with a readable token the form was given
 */
export function bindSignIn({ tokenKey, onToken }) {
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = tokenFromInput($("#signin-token").value);
    if (!readClaims(token)) {
      showSignIn(t("signin.not_a_token"));
      return;
    }
    $("#signin-token").value = "";
    storeToken(tokenKey, token);
    onToken(token);
  });
  $("#sign-out").addEventListener("click", () => {
    forgetToken(tokenKey);
    location.reload();
  });
}
