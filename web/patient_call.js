// The patient's side of the call: the patient comes last in the order of
// offering (mesh.js), so the patient's page answers everyone's offers (the
// doctor's, and each guest's). A page that has no working call while the
// visit is in progress asks for one (a `hangup` to that party; see call.js
// for why). The patient may leave the call (not the visit) and come back
// (leave(), rejoin()).

import { mediaPrefs } from "/static/device_check.js";
import { t } from "/static/i18n.js";
import { Mesh } from "/static/mesh.js";

/** After admission, how long to wait for the doctor's offer before asking for one. */
const OFFER_GRACE_MS = 6000;

export class PatientCall {
  /**
   * @param socket the /call socket
   * @param view the page's CallView
   * @param visit () => the visit as last told (or null)
   * @param over () => true once the page is done
   * @param onFirstOffer called before a new call is answered (shows the call screen if not yet)
   */
  constructor({ socket, view, visit, over, onFirstOffer }) {
    this.socket = socket;
    this.view = view;
    this.visit = visit;
    this.over = over;
    const inVisit = () => {
      const v = visit();
      return Boolean(v && v.state === "in_visit" && !over());
    };
    this.mesh = new Mesh({
      socket,
      view,
      self: "patient",
      visitId: () => (visit() ? visit().visit_id : null),
      active: inVisit,
      acceptsOffers: () => !over(),
      onFirstOffer,
      onTrouble: (err) => this.trouble(err),
      onMainState: (s, reason) => this.onState(s, reason),
    });
    this.inVisit = inVisit;
  }

  /** RTCConfiguration.iceServers from the server (the chart leg uses them too). */
  get iceServers() {
    return this.mesh.iceServers;
  }

  /** All live Call objects, one per other person. */
  calls() {
    return this.mesh.calls();
  }

  /** Own camera and microphone (null: none). */
  get localStream() {
    return this.view.localStream;
  }

  /** The call screen opened: own camera and microphone, as chosen in the device check. */
  openLocal() {
    this.view.showState("idle");
    const prefs = mediaPrefs();
    return this.view.openLocal({
      devices: prefs,
      without: prefs.chatOnly ? t("visit_call.chat_only") : null,
      problemNote: (problem) => t("visit_call.media_problem", { title: problem.title, text: problem.message }),
    });
  }

  /**
   * Just admitted: the doctor's offer is on its way (ask only if it got lost).
   * Otherwise (the page was reloaded) ask the doctor's page for a new call now.
   */
  expectOffer({ admittedNow }) {
    this.mesh.start();
    if (admittedNow) setTimeout(() => this.requestOfferIfIdle(), OFFER_GRACE_MS);
    else this.requestOfferIfIdle();
  }

  /** The page has no working call while the visit is in progress: ask for one. */
  requestOfferIfIdle() {
    if (this.inVisit()) this.mesh.requestOffers();
  }

  /** Leave the call but stay in the visit: every connection closed, no offers asked for; the tiles say so. */
  leave() {
    return this.mesh.leave();
  }

  /** Back in the call after leave(): the others offer again. */
  rejoin() {
    return this.mesh.rejoin();
  }

  /** A failed step of the call: say so; the doctor's page starts over when it does not connect. */
  trouble(err) {
    if (this.over() || (err && err.code === "conflict")) return;
    this.view.showState("failed", t("visit_call.retrying"));
  }

  /** The doctor's connection (the state line is theirs). */
  onState(s, reason) {
    if (reason === "left") this.view.showState("closed", t("visit_call.doctor_left"));
    else this.view.showState(s);
  }

  /** The visit is over: close every connection. */
  stop({ notify = false } = {}) {
    this.mesh.stop({ notify });
  }
}
