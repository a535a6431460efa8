// The patient's side of the call: the doctor's page makes every offer and
// the patient's page answers (call.js). A page that has no working call while
// the visit is in progress asks the doctor's page for a new one (with a
// `hangup`; see call.js for why).

import { request } from "/static/common.js";
import { mediaPrefs } from "/static/device_check.js";
import { learnIcePolicy } from "/static/ice_policy.js";
import { t } from "/static/i18n.js";

/** After admission, how long to wait for the doctor's offer before asking for one. */
const OFFER_GRACE_MS = 6000;
/** At most one request for an offer this often. */
const OFFER_REQUEST_EVERY_MS = 3000;

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
    this.onFirstOffer = onFirstOffer;
    /** RTCConfiguration.iceServers from the server (the chart leg uses them too). */
    this.iceServers = [];
    /** When this page last asked for an offer (ms). */
    this.lastOfferRequest = 0;
    socket.on("ice_servers", (p) => {
      this.iceServers = p.ice_servers || [];
      learnIcePolicy(p);
    });
    socket.on("connect", () => this.requestOfferIfIdle());
    socket.on("offer", (p) => this.onOffer(p));
    socket.on("answer", () => {}); // the patient never offers
    socket.on("candidate", (p) => this.view.call && this.view.call.handleCandidate(p));
    socket.on("hangup", (p) => this.onDoctorHangup(p));
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
    if (admittedNow) setTimeout(() => this.requestOfferIfIdle(), OFFER_GRACE_MS);
    else this.requestOfferIfIdle();
  }

  /** The page has no working call while the visit is in progress: ask the doctor's page to start one. */
  requestOfferIfIdle() {
    const visit = this.visit();
    if (!visit || visit.state !== "in_visit" || !this.socket.connected) return;
    const call = this.view.call;
    if (call && !["failed", "closed"].includes(call.state)) return;
    if (Date.now() - this.lastOfferRequest < OFFER_REQUEST_EVERY_MS) return;
    this.lastOfferRequest = Date.now();
    request(this.socket, "hangup", { visit_id: visit.visit_id }).catch(() => {});
  }

  async onOffer(offer) {
    const visit = this.visit();
    if (!visit || offer.visit_id !== visit.visit_id || this.over()) return;
    const current = this.view.call;
    if (offer.restart && current && !current.closed) {
      current.handleOffer(offer).catch((err) => this.trouble(err));
      return;
    }
    if (offer.restart) {
      // An ICE restart for a connection this page does not have: ask for a new call.
      this.lastOfferRequest = 0;
      this.requestOfferIfIdle();
      return;
    }
    this.onFirstOffer();
    const call = this.view.newCall({
      socket: this.socket,
      visitId: visit.visit_id,
      iceServers: this.iceServers,
      onState: (s) => this.view.showState(s),
    });
    await this.view.mediaReady;
    call.localStream = this.view.media;
    call.handleOffer(offer).catch((err) => this.trouble(err));
  }

  /** A failed step of the call: say so; the doctor's page starts over when it does not connect. */
  trouble(err) {
    if (this.over() || (err && err.code === "conflict")) return;
    this.view.showState("failed", t("visit_call.retrying"));
  }

  onDoctorHangup(p) {
    const visit = this.visit();
    if (!this.view.call || (visit && p.visit_id !== visit.visit_id)) return;
    this.view.hangUp();
    this.view.clearRemote();
    this.view.showState("closed", t("visit_call.doctor_left"));
  }
}
