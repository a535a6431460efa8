// Bringing a dropped call back without anyone doing anything: after a
// network change (Wi-Fi to cellular, a new address, UDP blocked for a while)
// the doctor's page restarts ICE on the same connection, and keeps restarting
// it, with a growing pause, for as long as the path stays down: a restart
// made while nothing gets through gathers nothing useful, and the next one
// finds the path back. The successful restart's time until media flowed
// again is reported (`call_quality` {restart, restart_ms}).

/** A call "disconnected" this long gets its first ICE restart (it often comes back by itself sooner). */
export const RESTART_AFTER_DISCONNECTED_MS = 4000;
/** Pauses between ICE restarts while the call stays down: 2 s, 4 s, then 8 s. */
export const RETRY_FIRST_MS = 2000;
export const RETRY_MAX_MS = 8000;
/** How often the inbound byte counts are read once the connection is back. */
const MEDIA_POLL_MS = 200;
/** A connection back this long without media counts as recovered anyway (nothing reported). */
const MEDIA_WAIT_MS = 20000;
/** Longest time reported (the server refuses more). */
const MAX_REPORT_MS = 599999;

export class CallRecovery {
  /**
   * @param restart () => make an ICE-restart offer on the current call
   * @param report ({restart, restart_ms}) => send the `call_quality` report of a recovery
   */
  constructor({ restart, report }) {
    this.restart = restart;
    this.report = report;
    /** The outage in progress: {since, attempts, lastRestartAt}; null while the call is fine. */
    this.outage = null;
    /** Recoveries of this call reported so far (the next report's `restart` number). */
    this.recovered = 0;
    this.timer = 0;
    this.mediaCheck = 0;
  }

  /** Milliseconds the call has been down (0: it is not). */
  downFor() {
    return this.outage ? performance.now() - this.outage.since : 0;
  }

  /** The call's RTCPeerConnection.connectionState changed. */
  stateChanged(call, state) {
    if (state === "connected") {
      if (!this.outage) return;
      clearTimeout(this.timer);
      this.awaitMedia(call);
    } else if (state === "disconnected" || state === "failed") {
      clearTimeout(this.mediaCheck);
      if (!this.outage) {
        this.outage = { since: performance.now(), attempts: 0, lastRestartAt: null };
        this.schedule(state === "failed" ? 0 : RESTART_AFTER_DISCONNECTED_MS);
      } else if (state === "failed" && this.outage.attempts === 0) {
        this.schedule(0); // failed before the first restart: no reason to wait longer
      }
    } else if (state === "closed") {
      this.reset();
    }
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), delay);
  }

  /** One ICE restart, and the next one planned in case this one does not bring the call back. */
  fire() {
    if (!this.outage) return;
    this.outage.attempts += 1;
    this.outage.lastRestartAt = performance.now();
    this.restart();
    this.schedule(Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.outage.attempts - 1)));
  }

  /** Connected again: the recovery is over once inbound bytes grow; report how long the last restart took. */
  awaitMedia(call) {
    const outage = this.outage;
    const until = performance.now() + MEDIA_WAIT_MS;
    let first = null;
    const check = async () => {
      if (outage !== this.outage || call.closed) return;
      let bytes = null;
      try {
        const inbound = await call.inboundBytes();
        bytes = inbound.audio + inbound.video;
      } catch {
        return; // closed meanwhile
      }
      if (outage !== this.outage || call.state !== "connected") return;
      if (first === null) first = bytes;
      else if (bytes > first) {
        this.outage = null;
        if (outage.lastRestartAt !== null) {
          this.recovered += 1;
          const ms = Math.max(1, Math.min(MAX_REPORT_MS, Math.round(performance.now() - outage.lastRestartAt)));
          this.report({ restart: this.recovered, restart_ms: ms });
        }
        return;
      }
      if (performance.now() > until) this.outage = null;
      else this.mediaCheck = setTimeout(check, MEDIA_POLL_MS);
    };
    check();
  }

  /** A new call, or none: forget the outage (the count of recoveries starts again). */
  reset() {
    clearTimeout(this.timer);
    clearTimeout(this.mediaCheck);
    this.outage = null;
    this.recovered = 0;
  }
}
