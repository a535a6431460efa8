// The call's tiles: one per other person in the call (up to three), each with
// their video, their name and why they are there ("Marta Ruiz — Interpreter —
// Spanish"), a note when their microphone is muted or their camera off, and a
// button to pin them. The pinned tile, else whoever speaks, else the main
// party (the doctor for the patient and guests, the patient for the doctor)
// is the large one; the others are small beside it (below it on a phone).
//
// The main party's tile is made by mountStage (call_view.js) with the ids the
// two-person call has always had (#remote-video, #remote-empty,
// #remote-paused); the others come and go with the people in the call.

import { h } from "/static/common.js";
import { t } from "/static/i18n.js";
import { untranslated } from "/static/i18n_nodes.js";
import { playVideo } from "/static/media.js";
import { roleText } from "/static/people.js";

const VIDEO_NOTES = ["paused", "audio_only", "camera_off"];

/** A `call_peers` entry as people.js knows a person: {type, kind, language, name}. */
export function personOf(party, info) {
  const kind = info ? info.kind : ["doctor", "patient"].includes(party) ? party : "clinician";
  const type = ["doctor", "patient"].includes(kind) ? kind : "guest";
  return { type, kind, language: info ? info.language : null, name: info ? info.name : null };
}

/** A person's name, or why they are there when no name is known. */
export function nameOf(party, info) {
  const person = personOf(party, info);
  return person.name || roleText(person);
}

/**
 * One tile's elements.
 * @param main the main party's tile (the ids of the two-person call)
 */
export function tileElement(party, { main = false, info = null } = {}) {
  const ids = (id) => (main ? { id } : {});
  const named = ["doctor", "patient"].includes(party);
  const label = main && named ? t(`stage.remote_video.${party}`) : t("tiles.video", { name: nameOf(party, info) });
  const waiting = named ? t(`stage.waiting_video.${party}`) : t("tiles.waiting");
  return h(
    "div",
    { class: "tile", dataset: { party, kind: personOf(party, info).kind, main: String(main) } },
    h("video", { ...ids("remote-video"), class: "video video-remote", autoplay: true, playsinline: true, "aria-label": label }),
    h("p", { ...ids("remote-empty"), class: "video-placeholder tile-empty", text: waiting }),
    h("p", { ...ids("remote-paused"), class: "video-placeholder video-paused", role: "status", "aria-live": "polite", dataset: { video: "" }, hidden: true }),
    h("p", { class: "video-placeholder tile-note", dataset: { note: "" }, hidden: true }),
    h(
      "div",
      { class: "tile-caption" },
      h("span", { class: "tile-name" }),
      h("span", { class: "tile-role" }),
      h("span", { class: "tile-flag tile-muted", dataset: { flag: "muted" }, hidden: true, text: t("tiles.muted") }),
      h("span", { class: "tile-flag tile-camera-off", dataset: { flag: "camera_off" }, hidden: true, text: t("tiles.camera_off") }),
    ),
    h("button", { type: "button", class: "btn tile-pin", "aria-pressed": "false", text: t("tiles.pin") }),
  );
}

export class Tiles {
  /**
   * @param grid the element holding the tiles (#tiles)
   * @param mainPeer the main party ("doctor", "patient")
   * @param onNeedTap () => the browser wants a tap before playing sound
   */
  constructor(grid, { mainPeer, onNeedTap }) {
    this.grid = grid;
    this.mainPeer = mainPeer;
    this.onNeedTap = onNeedTap;
    /** party -> {party, info, el, status} */
    this.tiles = new Map();
    this.pinned = null;
    this.speaker = null;
    for (const el of grid.querySelectorAll(".tile")) this.adopt(el.dataset.party, el, null);
    this.layout();
  }

  adopt(party, el, info) {
    const tile = { party, info, el, status: { audio: "on", video: "on" } };
    el.querySelector(".tile-pin").addEventListener("click", () => this.pin(this.pinned === party ? null : party));
    this.tiles.set(party, tile);
    this.describe(tile);
    return tile;
  }

  /** The tile of a party, made if missing; its name and role as told (`call_peers`). */
  ensure(party, info = null) {
    let tile = this.tiles.get(party);
    if (!tile) {
      tile = this.adopt(party, tileElement(party, { info }), info);
      this.grid.append(tile.el);
    } else if (info) {
      tile.info = info;
    }
    this.describe(tile);
    this.layout();
    return tile;
  }

  describe(tile) {
    const { party, info, el } = tile;
    const person = personOf(party, info);
    const name = nameOf(party, info);
    el.dataset.kind = person.kind;
    el.querySelector(".tile-name").replaceChildren(person.name ? untranslated(person.name) : roleText(person));
    el.querySelector(".tile-role").textContent = person.name ? roleText(person) : "";
    el.querySelector(".tile-role").hidden = !person.name;
    const pinned = this.pinned === party;
    const pin = el.querySelector(".tile-pin");
    pin.setAttribute("aria-pressed", String(pinned));
    pin.setAttribute("aria-label", t(pinned ? "tiles.unpin_name" : "tiles.pin_name", { name }));
    pin.textContent = t(pinned ? "tiles.unpin" : "tiles.pin");
    if (el.dataset.main !== "true" || !["doctor", "patient"].includes(party)) {
      el.querySelector("video").setAttribute("aria-label", t("tiles.video", { name }));
    }
  }

  /** A party no longer in the call: its tile goes (the main party's stays, emptied). */
  remove(party) {
    const tile = this.tiles.get(party);
    if (!tile) return;
    if (tile.el.dataset.main === "true") {
      this.clear(party);
      return;
    }
    tile.el.querySelector("video").srcObject = null;
    tile.el.remove();
    this.tiles.delete(party);
    if (this.pinned === party) this.pinned = null;
    if (this.speaker === party) this.speaker = null;
    this.layout();
  }

  /** Show a party's stream; false if the browser wants a tap first. */
  async show(party, stream) {
    const tile = this.ensure(party);
    const video = tile.el.querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
    tile.el.querySelector(".tile-empty").hidden = true;
    tile.el.dataset.video = "on";
    const played = await playVideo(video);
    if (!played) this.onNeedTap();
    return played;
  }

  /** Play every tile's video again (after the tap). */
  async playAll() {
    let all = true;
    for (const tile of this.tiles.values()) {
      const video = tile.el.querySelector("video");
      if (video.srcObject && !(await playVideo(video))) all = false;
    }
    return all;
  }

  /** No video from a party (no call now): the tile waits. */
  clear(party) {
    const tile = this.tiles.get(party);
    if (!tile) return;
    tile.el.querySelector("video").srcObject = null;
    tile.el.querySelector(".tile-empty").hidden = false;
    tile.el.dataset.video = "";
    this.setStatus(party, null);
  }

  /**
   * What a party said of its side (`call_status`): mute and camera flags on its
   * tile, a note over its video when it sends none (null: nothing known).
   */
  setStatus(party, status) {
    const tile = this.tiles.get(party);
    if (!tile) return;
    tile.status = { audio: (status && status.audio) || "on", video: (status && status.video) || "on" };
    const el = tile.el;
    el.querySelector(".tile-muted").hidden = tile.status.audio !== "muted";
    el.querySelector(".tile-camera-off").hidden = tile.status.video !== "camera_off";
    el.dataset.audio = tile.status.audio;
    const video = VIDEO_NOTES.includes(tile.status.video) ? tile.status.video : "";
    const note = el.querySelector(".video-paused");
    note.hidden = !video;
    note.dataset.video = video;
    const named = ["doctor", "patient"].includes(party);
    note.textContent = video ? (named ? t(`stage.remote_video_${video}.${party}`) : t(`tiles.video_${video}`)) : "";
  }

  /** A note over a party's tile: "reconnecting", "left", or null. */
  setNote(party, note) {
    const tile = this.tiles.get(party);
    if (!tile) return;
    const el = tile.el.querySelector(".tile-note");
    el.hidden = !note;
    el.dataset.note = note || "";
    el.textContent = note ? t(`tiles.note.${note}`) : "";
  }

  /** Keep a party's tile large (null: whoever speaks again). */
  pin(party) {
    this.pinned = party && this.tiles.has(party) ? party : null;
    for (const tile of this.tiles.values()) this.describe(tile);
    this.layout();
  }

  setSpeaker(party) {
    if (party === this.speaker) return;
    this.speaker = party;
    this.layout();
  }

  /** The large tile: the pinned one, else the speaker, else the main party's, else the first. */
  get large() {
    for (const party of [this.pinned, this.speaker, this.mainPeer]) {
      if (party && this.tiles.has(party)) return party;
    }
    const first = this.tiles.keys().next();
    return first.done ? null : first.value;
  }

  layout() {
    const large = this.large;
    const shown = [...this.tiles.values()];
    this.grid.dataset.count = String(shown.length);
    this.grid.closest(".stage").dataset.count = String(shown.length);
    for (const tile of shown) {
      tile.el.classList.toggle("is-large", tile.party === large);
      tile.el.classList.toggle("is-speaking", tile.party === this.speaker);
      tile.el.querySelector(".tile-pin").hidden = shown.length < 2;
    }
  }
}
