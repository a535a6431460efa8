// The call of a visit as a mesh (issue 13, docs/mesh_protocol in
// docs/protocol.md): up to four people (patient, doctor, up to three guests),
// one Call (call.js) per other party, each its own RTCPeerConnection.
//
// Who offers: doctor < guests (by id) < patient; in each pair the earlier
// party offers and the later one answers, so two pages never offer to each
// other at once. The offering side of a pair restarts ICE on a connection
// that drops (call_recovery.js), starts over when the other asks for it
// (`hangup` or `ready` from the answering side), when a call does not
// connect in time, or when ICE restarts have not brought it back for long.
// The answering side asks for an offer (`hangup` to that party) when it has
// no working call.
//
// Messages come routed by `from` (none: the other of patient and doctor, as
// from a server before the mesh). `peer` events say a party's call socket
// came or went, or that it left or rejoined the call; `call_peers` says who
// the others are (names, why they are there) and whether they are online.
// Each person's page caps the video it sends on each connection so that all
// of it fits a 2 Mbit/s uplink (see capFor).

import { CallRecovery } from "/static/call_recovery.js";
import { request } from "/static/common.js";
import { learnIcePolicy } from "/static/ice_policy.js";

/** A call not connected this long after its last offer is started over. */
const CALL_WATCHDOG_MS = 20000;
/** A call down this long despite its ICE restarts is started over (a new connection). */
const NEW_CALL_AFTER_DOWN_MS = 60000;
/** At most one request for an offer to the same party this often. */
const OFFER_REQUEST_EVERY_MS = 3000;
/** The video of all connections of a page together (bit/s); audio fits in the rest of 2 Mbit/s. */
const VIDEO_BUDGET = 1_700_000;

/** Where a party stands in the order of offering: doctor, then guests by id, then patient. */
function rank(party) {
  if (party === "doctor") return [0, ""];
  if (party === "patient") return [2, ""];
  return [1, String(party)];
}

/** True when `self` makes the offers to `peer` (the earlier of the two). */
export function offersTo(self, peer) {
  const [a, ida] = rank(self);
  const [b, idb] = rank(peer);
  return a < b || (a === b && ida < idb);
}

/** The patient and the doctor talk without `to` (the pair meant without one). */
function wireTo(self, peer) {
  const pair = new Set([self, peer]);
  return pair.has("patient") && pair.has("doctor") ? null : peer;
}

/**
 * The cap of the video sent on each connection with n people in the call
 * (bit/s): the budget split among the others; none between two people (as
 * before the mesh).
 */
export function capFor(n) {
  return n > 2 ? Math.floor(VIDEO_BUDGET / (n - 1)) : null;
}

/** One other party of the call, and this page's connection with them. */
class Link {
  constructor(mesh, party, offerer) {
    this.mesh = mesh;
    this.party = party;
    this.offerer = offerer;
    /** {party, kind, name, language, online} from `call_peers` (null: not told yet). */
    this.info = null;
    /** Has a call socket and is in the call, as far as this page knows. */
    this.online = true;
    /** Left the call (leave_call, or their call socket went): no new call until they are back. */
    this.left = false;
    /** The current Call, or null. */
    this.call = null;
    /** The connection is down and people were told "reconnecting" or "left": say "back" when it is up. */
    this.away = false;
    this.lastOfferAt = 0;
    this.lastOfferRequest = 0;
    /** A new call's offer is being made (own media still opening). */
    this.offering = false;
    /** Watchdog rounds in a row without a connection (the answering side asks after two). */
    this.idleChecks = 0;
    this.reofferTimer = 0;
    this.recovery = offerer ? new CallRecovery({ restart: () => mesh.offer(this, { restart: true }), report: (f) => mesh.reportQuality(this, f) }) : null;
  }

  get live() {
    return Boolean(this.call && !this.call.closed);
  }
}

export class Mesh extends EventTarget {
  /**
   * @param socket the /call socket
   * @param view the page's CallView (the tiles)
   * @param self own party ("doctor", "patient"; null for a guest: `call_peers` says)
   * @param visitId () => the visit in progress, or null
   * @param active () => true while this page should be in the call (the visit in progress)
   * @param acceptsOffers () => true while an offer is answered (default: active; the patient's
   *   page answers the doctor's first offer before it hears that the visit started)
   * @param onFirstOffer called before a new call is answered
   * @param onTrouble (err) => a failed signaling step
   * @param onMainState (state, reason) => the main party's connection changed (reason: "reconnected", "left")
   */
  constructor({ socket, view, self, visitId, active, acceptsOffers = active, onFirstOffer = () => {}, onTrouble = () => {}, onMainState = () => {} }) {
    super();
    this.socket = socket;
    this.view = view;
    this.self = self;
    this.visitId = visitId;
    this.active = active;
    this.acceptsOffers = acceptsOffers;
    this.onFirstOffer = onFirstOffer;
    this.onTrouble = onTrouble;
    this.onMainState = onMainState;
    /** RTCConfiguration.iceServers from the server (the chart leg uses them too). */
    this.iceServers = [];
    /** Other parties by party string. */
    this.links = new Map();
    /** This page left the call (leave()): it neither offers nor asks for offers. */
    this.leftCall = false;
    this.watchdog = 0;
    if (self) this.ensure(view.mainPeer);
    socket.on("ice_servers", (p) => {
      this.iceServers = p.ice_servers || [];
      learnIcePolicy(p);
    });
    socket.on("connect", () => this.onConnect());
    socket.on("offer", (p) => this.onOffer(p));
    socket.on("answer", (p) => this.onAnswer(p));
    socket.on("candidate", (p) => this.route(p, (link) => link.call && link.call.handleCandidate(p)));
    socket.on("hangup", (p) => this.onHangup(p));
    socket.on("ready", (p) => this.onHangup(p));
    socket.on("peer", (p) => this.onPeer(p));
  }

  // -- parties --------------------------------------------------------------------

  /** The link with a party, made on first use (the offering side by the order). */
  ensure(party) {
    let link = this.links.get(party);
    if (!link && this.self && party !== this.self) {
      link = new Link(this, party, offersTo(this.self, party));
      this.links.set(party, link);
      this.view.ensureTile(party, link.info);
    }
    return link || null;
  }

  /** A message's link: by `from` (none: the other of patient and doctor). */
  route(p, fn) {
    if (p.visit_id !== this.visitId()) return;
    const link = this.ensure(p.from || this.view.mainPeer);
    if (link) fn(link);
  }

  /** Ask who else is in the call (names, why, online), and connect with whoever is there. */
  async refreshPeers() {
    const visitId = this.visitId();
    if (!visitId || !this.socket.connected) return;
    let reply;
    try {
      reply = await request(this.socket, "call_peers", { visit_id: visitId });
    } catch {
      return; // the visit is over, or a server before the mesh: the patient-doctor pair only
    }
    if (visitId !== this.visitId()) return;
    if (!this.self && reply.self) {
      this.self = reply.self;
      this.ensure(this.view.mainPeer);
    }
    const present = new Set();
    for (const info of reply.peers || []) {
      present.add(info.party);
      const link = this.ensure(info.party);
      if (!link) continue;
      link.info = info;
      link.online = Boolean(info.online);
      if (info.online) link.left = false;
      this.view.ensureTile(info.party, info);
    }
    for (const link of [...this.links.values()]) {
      if (!present.has(link.party) && link.party !== this.view.mainPeer) this.drop(link);
    }
    this.connectAll();
  }

  /** Offer to, or ask for an offer from, everyone online without a working call. */
  connectAll() {
    if (!this.active() || this.leftCall) return;
    for (const link of this.links.values()) {
      if (link.left || !link.online) continue;
      // (The answering side waits: the offer may be on its way; check() asks later.)
      if (link.offerer && !link.live && !link.offering) this.scheduleNewCall(link, 300);
    }
  }

  /** A party no longer in the visit's call (removed, left the visit): close and forget it. */
  drop(link) {
    clearTimeout(link.reofferTimer);
    if (link.recovery) link.recovery.reset();
    const shown = link.live || !link.left;
    if (link.call) link.call.close();
    link.call = null;
    this.links.delete(link.party);
    if (shown) this.view.announce(link.party, "left");
    this.view.removeTile(link.party);
    this.applyCaps();
  }

  onPeer(p) {
    if (p.visit_id !== this.visitId() || !p.from) return;
    const link = this.ensure(p.from);
    if (p.state === "joined") {
      if (link) {
        link.left = false;
        link.online = true;
        // A connection still there recovers by itself (ICE restarts, the watchdog).
        if (link.offerer && !link.live) this.scheduleNewCall(link, 800);
      }
      this.refreshPeers();
    } else if (p.state === "left") {
      if (link) {
        link.online = false;
        link.left = true;
        // A connection is kept (and recovers if it is down): their socket may
        // only be away a moment; a page that leaves the call hangs up each of
        // its connections itself, and a guest removed is no longer a peer.
        if (!link.live) this.closeLeft(link);
      }
      this.refreshPeers();
    }
  }

  /** The party left the call: close the connection, say so on their tile. */
  closeLeft(link) {
    clearTimeout(link.reofferTimer);
    if (link.recovery) link.recovery.reset();
    const wasShown = link.live;
    if (link.call) link.call.close();
    link.call = null;
    this.view.clearRemote(link.party);
    if (wasShown || !link.away) this.view.announce(link.party, "left");
    link.away = true;
    if (link.party === this.view.mainPeer) this.onMainState("closed", "left");
    this.applyCaps();
  }

  // -- own socket ---------------------------------------------------------------

  onConnect() {
    // Signaling may have been lost while this socket was away: restart ICE on
    // the calls there are, start the missing ones, ask for offers.
    if (!this.active() || this.leftCall) return;
    for (const link of this.links.values()) {
      if (!link.offerer || link.left) continue;
      if (link.call && link.call.state === "connected") continue;
      if (link.live) this.offer(link, { restart: true });
      else this.scheduleNewCall(link, 500);
    }
    for (const link of this.links.values()) if (!link.offerer) this.requestOffer(link);
    this.refreshPeers();
  }

  /** Start taking part: own media is opening; offers go out, the watchdog runs. */
  start() {
    this.leftCall = false;
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.check(), 5000);
    for (const link of this.links.values()) {
      if (link.offerer && !link.left) this.offerNew(link);
    }
    this.refreshPeers();
  }

  // -- the offering side ----------------------------------------------------------

  /**
   * Make an offer to a party: a new connection, or an ICE restart of the
   * current one (restart). Needs the /call socket; its connect handler calls
   * again if it is away.
   */
  async offer(link, { restart = false } = {}) {
    const visitId = this.visitId();
    if (!visitId || !this.socket.connected || this.leftCall || !this.active()) return;
    await this.view.mediaReady;
    if (this.visitId() !== visitId || this.links.get(link.party) !== link || this.leftCall) return;
    link.lastOfferAt = Date.now();
    if (restart && link.live) {
      link.call.offer({ restart: true }).catch((err) => this.onTrouble(err));
      return;
    }
    if (link.left) return;
    link.recovery.reset();
    const call = this.newCall(link, visitId);
    call.offer().catch((err) => this.onTrouble(err));
  }

  /** A new call's offer, once at a time (own media may take a while to open). */
  async offerNew(link) {
    if (link.offering) return;
    link.offering = true;
    try {
      await this.offer(link);
    } finally {
      link.offering = false;
    }
  }

  scheduleNewCall(link, delay) {
    clearTimeout(link.reofferTimer);
    link.reofferTimer = setTimeout(() => this.offerNew(link), delay);
  }

  onAnswer(p) {
    this.route(p, (link) => {
      if (link.offerer && link.call) link.call.handleAnswer(p).catch((err) => this.onTrouble(err));
    });
  }

  /** The other side dropped its call (reload, lost connection) or left the call. */
  onHangup(p) {
    this.route(p, (link) => {
      if (link.left || !link.offerer) {
        // They left the call (or, the side that offers to this page, hung up).
        this.closeLeft(link);
        return;
      }
      if (link.call) link.call.close();
      link.call = null;
      this.view.clearRemote(link.party);
      if (link.party === this.view.mainPeer) this.onMainState("connecting", "reconnected");
      this.scheduleNewCall(link, 800);
    });
  }

  /** A recovery's `call_quality` report of a connection, tried again a few times. */
  reportQuality(link, facts, tries = 3) {
    const call = link.call;
    const visitId = this.visitId();
    if (!call || !visitId) return;
    const body = { visit_id: visitId, ...facts };
    if (call.callId) body.call_id = call.callId;
    request(this.socket, "call_quality", body).catch((err) => {
      const final = err && ["bad_request", "forbidden", "not_found", "conflict"].includes(err.code);
      if (!final && tries > 1) setTimeout(() => call === link.call && this.reportQuality(link, facts, tries - 1), 1000);
    });
  }

  /**
   * Every 5 s: a call that does not connect in time is started over (lost
   * offer, the other away); so is one that ICE restarts have not brought
   * back in a long while. The answering side asks again for missing calls.
   */
  check() {
    if (!this.visitId() || !this.active() || this.leftCall) return;
    for (const link of this.links.values()) {
      if (link.left) continue;
      if (!link.offerer) {
        // Only without any connection: one that failed is the offering side's to
        // restart (ICE restarts bring it back on the same connection).
        link.idleChecks = link.live ? 0 : link.idleChecks + 1;
        if (link.online && link.idleChecks >= 2) this.requestOffer(link);
        continue;
      }
      const call = link.call;
      if (call && call.state === "connected") continue;
      if (!call && link.online) this.offerNew(link);
      else if (call && (link.recovery.downFor() > NEW_CALL_AFTER_DOWN_MS || Date.now() - link.lastOfferAt > CALL_WATCHDOG_MS)) this.offerNew(link);
    }
  }

  // -- the answering side ---------------------------------------------------------

  /** No working call with a party that offers to this page: ask it for one (at most every 3 s). */
  requestOffer(link, { now = false } = {}) {
    const visitId = this.visitId();
    if (!visitId || !this.active() || this.leftCall || !this.socket.connected || link.offerer) return;
    if (link.call && !["failed", "closed"].includes(link.call.state)) return;
    if (!now && Date.now() - link.lastOfferRequest < OFFER_REQUEST_EVERY_MS) return;
    link.lastOfferRequest = Date.now();
    const to = wireTo(this.self, link.party);
    request(this.socket, "hangup", to ? { visit_id: visitId, to } : { visit_id: visitId }).catch(() => {});
  }

  /** Ask every party that offers to this page for a call, if there is none. */
  requestOffers() {
    for (const link of this.links.values()) if (!link.offerer) this.requestOffer(link);
  }

  async onOffer(offer) {
    if (offer.visit_id !== this.visitId() || !this.acceptsOffers() || this.leftCall) return;
    if (!this.self) await this.refreshPeers(); // a clinician guest learns its party from call_peers
    const link = this.ensure(offer.from || this.view.mainPeer);
    if (!link || link.offerer) return; // this page makes the offers to that party
    link.left = false;
    link.online = true;
    if (offer.restart && link.live) {
      link.call.handleOffer(offer).catch((err) => this.onTrouble(err));
      return;
    }
    if (offer.restart) {
      // An ICE restart for a connection this page does not have: ask for a new call.
      link.lastOfferRequest = 0;
      this.requestOffer(link);
      return;
    }
    this.onFirstOffer();
    const call = this.newCall(link, offer.visit_id);
    await this.view.mediaReady;
    call.localStream = this.view.media;
    call.handleOffer(offer).catch((err) => this.onTrouble(err));
  }

  // -- both -------------------------------------------------------------------------

  /** A new connection with a party (its old one closed), its states followed. */
  newCall(link, visitId) {
    let call = null; // (states reported while the call is being made are the new call's)
    call = this.view.newCall({
      socket: this.socket,
      visitId,
      iceServers: this.iceServers,
      peer: link.party,
      to: wireTo(this.self, link.party),
      onState: (s) => this.onState(link, call, s),
    });
    link.call = call;
    this.applyCaps();
    return call;
  }

  onState(link, call, s) {
    if (call && call !== link.call) return; // a call replaced meanwhile
    if (link.recovery) link.recovery.stateChanged(link.call, s);
    if (s === "connected") {
      if (link.away) this.view.announce(link.party, "back");
      link.away = false;
      this.view.setTileNote(link.party, null);
      this.applyCaps();
    } else if ((s === "disconnected" || s === "failed") && !link.left && !link.away) {
      link.away = true;
      this.view.announce(link.party, "reconnecting");
      this.view.setTileNote(link.party, "reconnecting");
    }
    if (link.party === this.view.mainPeer) this.onMainState(s, null);
  }

  /** The video cap of every connection, for the number of people in the call now. */
  applyCaps() {
    const n = 1 + [...this.links.values()].filter((l) => l.live).length;
    const cap = capFor(n);
    for (const link of this.links.values()) if (link.live) link.call.capVideo(cap);
  }

  /** All live Call objects. */
  calls() {
    return [...this.links.values()].filter((l) => l.live).map((l) => l.call);
  }

  /**
   * Leave the call (not the visit): `leave_call`, then each connection hung
   * up; nothing is offered or asked for until rejoin().
   */
  async leave() {
    const visitId = this.visitId();
    this.leftCall = true;
    clearInterval(this.watchdog);
    if (visitId) await request(this.socket, "leave_call", { visit_id: visitId }).catch(() => {});
    this.closeAll({ notify: true });
    this.view.showLeft(true);
  }

  /** Back in the call: `join_call`; the earlier parties offer, this page offers to the later ones. */
  async rejoin() {
    const visitId = this.visitId();
    this.view.showLeft(false);
    if (visitId) await request(this.socket, "join_call", { visit_id: visitId }).catch(() => {});
    this.start();
    for (const link of this.links.values()) this.requestOffer(link, { now: true });
  }

  /** Close every connection (telling the others when notify); the page stays in the visit. */
  closeAll({ notify = false } = {}) {
    for (const link of this.links.values()) {
      clearTimeout(link.reofferTimer);
      if (link.recovery) link.recovery.reset();
      if (link.call) link.call.close({ notify });
      link.call = null;
      link.away = false;
      this.view.clearRemote(link.party);
    }
  }

  /** The page is done with the call (the visit ended). */
  stop({ notify = false } = {}) {
    clearInterval(this.watchdog);
    this.closeAll({ notify });
  }
}
