// How good the call's connection is, from RTCPeerConnection.getStats(), and
// when to give up video to keep the sound clear. Pure functions (readStats,
// levelOf, LevelSmoother, FallbackRule) and a small monitor that polls
// getStats every two seconds (QualityMonitor). No imports: the pages and the
// tests load it as is. The thresholds are documented in docs/architecture.md
// ("Call quality and audio-only fallback").

/** Levels, best first. */
export const LEVELS = ["good", "fair", "weak", "very_weak"];

/**
 * Where each measure puts the connection: the level is the worst of them.
 * rttMs / lossPct: good below the first bound, fair below the second, weak
 * below the third, very weak from there. outKbps (available outgoing
 * bitrate; counted only while this side sends video, else the estimate is
 * limited by the little it sends): good from the first, fair from the second,
 * weak from the third, very weak below. fps (video frames received per
 * second; counted only while the other side sends video): good from the
 * first, fair from the second, weak below (a low frame rate alone never
 * makes it very weak).
 */
export const THRESHOLDS = {
  rttMs: [300, 500, 1500],
  lossPct: [1, 3, 12],
  outKbps: [500, 200, 80],
  fps: [15, 8],
};

/** The audio-only fallback (FallbackRule). */
export const FALLBACK = {
  /** Video pauses when the available outgoing bitrate stays below this (kbit/s)… */
  pauseBelowKbps: 150,
  /** …for this long. */
  pauseAfterMs: 4000,
  /** It resumes when the estimate stays above this (kbit/s)… */
  resumeAboveKbps: 300,
  /** …for this long; or when the path is calm this long (see calm*). */
  resumeAfterMs: 8000,
  /**
   * While video is paused, the estimate cannot climb on the sound alone (it
   * is held near what is sent), so a calm path (round trip and loss below
   * these) is also a reason to try video again; a try that falls back again
   * doubles the calm time asked for the next one (up to trialMaxMs).
   */
  calmRttMs: 800,
  calmLossPct: 3,
  trialMaxMs: 120000,
  /**
   * For this long after video resumed, a low estimate on a calm path is the
   * estimate still ramping up, not congestion: it does not count.
   */
  rampMs: 20000,
};

/** Loss is counted over this many readings (INTERVAL_MS each): a few hundred packets. */
export const LOSS_WINDOW = 3;

/** How often the monitor reads getStats (ms). */
export const INTERVAL_MS = 2000;

function worse(a, b) {
  return LEVELS.indexOf(a) >= LEVELS.indexOf(b) ? a : b;
}

function below(value, bounds) {
  for (let i = 0; i < bounds.length; i++) if (value < bounds[i]) return LEVELS[i];
  return LEVELS[bounds.length];
}

function atLeast(value, bounds) {
  for (let i = 0; i < bounds.length; i++) if (value >= bounds[i]) return LEVELS[i];
  return LEVELS[bounds.length];
}

/**
 * The level of one sample ({rttMs, lossPct, outKbps, fps}, each null when
 * unknown or not counted); null when nothing is known yet.
 */
export function levelOf({ rttMs = null, lossPct = null, outKbps = null, fps = null } = {}, t = THRESHOLDS) {
  let level = null;
  const take = (l) => (level = level ? worse(level, l) : l);
  if (rttMs !== null) take(below(rttMs, t.rttMs));
  if (lossPct !== null) take(below(lossPct, t.lossPct));
  if (outKbps !== null) take(atLeast(outKbps, t.outKbps));
  if (fps !== null) take(atLeast(fps, t.fps));
  return level;
}

/**
 * Read one getStats() report (anything with forEach over stats objects) into
 * the figures the level and the fallback need. `prev` is an earlier
 * reading's `counters` (loss is counted over the interval between the two;
 * the monitor passes the one LOSS_WINDOW readings back).
 * Returns {rttMs, lossPct, outKbps, fps, relay, counters}; relay is true/false
 * once a candidate pair is selected, null before.
 */
export function readStats(report, prev = null) {
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  let pair = null;
  for (const s of byId.values()) {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId) || pair;
  }
  if (!pair) {
    for (const s of byId.values()) if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  }
  const counters = { received: 0, lost: 0, frames: 0, audioReceived: 0, videoReceived: 0 };
  let fps = null;
  let remoteLoss = null;
  let remoteRtt = null;
  for (const s of byId.values()) {
    if (s.type === "inbound-rtp") {
      counters.received += s.packetsReceived || 0;
      counters.lost += Math.max(0, s.packetsLost || 0);
      counters[s.kind === "audio" ? "audioReceived" : "videoReceived"] += s.packetsReceived || 0;
      if (s.kind === "video") {
        counters.frames += s.framesDecoded || 0;
        if (typeof s.framesPerSecond === "number") fps = (fps || 0) + s.framesPerSecond;
      }
    } else if (s.type === "remote-inbound-rtp") {
      if (typeof s.fractionLost === "number") remoteLoss = Math.max(remoteLoss || 0, s.fractionLost * 100);
      if (typeof s.roundTripTime === "number") remoteRtt = Math.max(remoteRtt || 0, s.roundTripTime * 1000);
    }
  }
  let lossPct = remoteLoss;
  if (prev) {
    const received = counters.received - prev.received;
    const lost = counters.lost - prev.lost;
    if (received + lost > 0) lossPct = Math.max(lossPct || 0, (100 * Math.max(0, lost)) / (received + Math.max(0, lost)));
  }
  let rttMs = pair && typeof pair.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : null;
  if (rttMs === null) rttMs = remoteRtt;
  const outKbps = pair && typeof pair.availableOutgoingBitrate === "number" ? pair.availableOutgoingBitrate / 1000 : null;
  let relay = null;
  if (pair) {
    const local = byId.get(pair.localCandidateId);
    const remote = byId.get(pair.remoteCandidateId);
    relay = Boolean((local && local.candidateType === "relay") || (remote && remote.candidateType === "relay"));
  }
  return { rttMs, lossPct, outKbps, fps, relay, counters };
}

/**
 * A level shown to people should not flicker: it goes down at once and up
 * only after `upAfter` samples in a row at least that good.
 */
export class LevelSmoother {
  constructor(upAfter = 2) {
    this.upAfter = upAfter;
    this.level = null;
    this.better = 0;
  }

  /** The level to show after this sample's level (null: unknown). */
  push(level) {
    if (level === null) return this.level;
    if (this.level === null || LEVELS.indexOf(level) >= LEVELS.indexOf(this.level)) {
      this.level = level;
      this.better = 0;
    } else if (++this.better >= this.upAfter) {
      this.level = level;
      this.better = 0;
    }
    return this.level;
  }
}

/**
 * The audio-only fallback, with hysteresis (see FALLBACK). update() takes a
 * sample ({outKbps, rttMs, lossPct}) and the time (ms), and returns "pause",
 * "resume" or null (no change). reset() forgets everything (a new call, or
 * the person chose audio only: while video is not sent, the estimate says
 * nothing about what video would get).
 */
export class FallbackRule {
  constructor(opts = FALLBACK) {
    this.opts = opts;
    this.reset();
  }

  reset() {
    this.paused = false;
    this.lowSince = null;
    this.highSince = null;
    this.calmSince = null;
    this.resumedAt = null;
    this.calmNeededMs = this.opts.resumeAfterMs;
  }

  update({ outKbps = null, rttMs = null, lossPct = null }, now) {
    const o = this.opts;
    const calm = rttMs !== null && lossPct !== null && rttMs < o.calmRttMs && lossPct < o.calmLossPct;
    if (!this.paused) {
      const ramping = this.resumedAt !== null && now - this.resumedAt < o.rampMs && calm;
      if (outKbps !== null && outKbps < o.pauseBelowKbps && !ramping) {
        if (this.lowSince === null) this.lowSince = now;
        if (now - this.lowSince >= o.pauseAfterMs) {
          // A try that fell back soon: ask a longer calm before the next one.
          if (this.resumedAt !== null && now - this.resumedAt < o.rampMs + o.pauseAfterMs) {
            this.calmNeededMs = Math.min(o.trialMaxMs, this.calmNeededMs * 2);
          } else {
            this.calmNeededMs = o.resumeAfterMs;
          }
          this.paused = true;
          this.lowSince = this.highSince = this.calmSince = null;
          return "pause";
        }
      } else {
        this.lowSince = null;
      }
      return null;
    }
    this.highSince = outKbps !== null && outKbps > o.resumeAboveKbps ? (this.highSince ?? now) : null;
    this.calmSince = calm ? (this.calmSince ?? now) : null;
    const high = this.highSince !== null && now - this.highSince >= o.resumeAfterMs;
    const calmLong = this.calmSince !== null && now - this.calmSince >= this.calmNeededMs;
    if (high || calmLong) {
      this.paused = false;
      this.resumedAt = now;
      this.lowSince = this.highSince = this.calmSince = null;
      return "resume";
    }
    return null;
  }
}

/**
 * Reads getStats() of a peer connection every INTERVAL_MS and hands each
 * reading to onSample(reading, now). Stops by itself once the connection is
 * closed.
 */
export class QualityMonitor {
  constructor(pc, onSample, intervalMs = INTERVAL_MS) {
    this.pc = pc;
    this.onSample = onSample;
    this.intervalMs = intervalMs;
    this.timer = 0;
    /** Counters of the last LOSS_WINDOW readings, oldest first. */
    this.history = [];
    this.busy = false;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.tick();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
  }

  async tick() {
    if (this.busy) return;
    if (this.pc.connectionState === "closed") {
      this.stop();
      return;
    }
    this.busy = true;
    try {
      const reading = readStats(await this.pc.getStats(), this.history[0] || null);
      this.history.push(reading.counters);
      if (this.history.length > LOSS_WINDOW) this.history.shift();
      this.onSample(reading, performance.now());
    } catch {
      // A connection closed meanwhile: the next tick stops.
    } finally {
      this.busy = false;
    }
  }
}
