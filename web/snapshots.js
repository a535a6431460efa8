// Snapshots of the patient's video for the chart, on the doctor's page.
//
// The media worker takes the picture from the patient's chart leg (`snapshot`
// {visit_id} over /media → {snapshot: {id, file, sharpness, brightness, width,
// height, taken_at}}) and stores the JPEG in the chart. Each gallery entry
// shows the worker's facts and, at once, a preview grabbed from the call's
// video at the same moment; the chart's own JPEG replaces it when it has been
// fetched from the chart file route (GET /api/visits/{visit}/files/{file},
// with the staff token: an <img> cannot send one, so it is fetched as a blob).

import { formatClock, h } from "/static/common.js";
import { t } from "/static/i18n.js";

/** Below this variance of the Laplacian a shot is probably blurred. */
export const BLUR_BELOW = 50;
/** Below this mean luma (0-255) a shot is too dark to be useful. */
export const DARK_BELOW = 40;

/**
 * What is wrong with a shot, in words (none when nothing is).
 * @param retake whether to suggest another shot (the visit is on), or only say what is wrong (the chart)
 */
export function snapshotWarnings(shot, { retake = true } = {}) {
  const warnings = [];
  if (typeof shot.sharpness === "number" && shot.sharpness < BLUR_BELOW) warnings.push(t(retake ? "snapshot.blurred_retake" : "snapshot.blurred"));
  if (typeof shot.brightness === "number" && shot.brightness < DARK_BELOW) warnings.push(t(retake ? "snapshot.dark_retake" : "snapshot.dark"));
  return warnings;
}

/** "Sharpness 212 · brightness 101 · 640×480": the worker's figures of a shot. */
export function snapshotQuality(shot) {
  const figures = { sharpness: Number(shot.sharpness).toFixed(0), brightness: Number(shot.brightness).toFixed(0) };
  if (shot.width && shot.height) return t("snapshot.quality_size", { ...figures, width: String(shot.width), height: String(shot.height) });
  return t("snapshot.quality", figures);
}

/** A small JPEG data URL of what a <video> shows now; null when it shows nothing. */
export function grabFrame(video, maxWidth = 320) {
  if (!video || !video.videoWidth || !video.videoHeight) return null;
  const scale = Math.min(1, maxWidth / video.videoWidth);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  try {
    return canvas.toDataURL("image/jpeg", 0.8);
  } catch {
    return null;
  }
}

export class SnapshotGallery {
  /**
   * @param list the <ul> the entries go in
   * @param onRetake called when the doctor asks for another shot
   */
  constructor(list, { onRetake = () => {} } = {}) {
    this.list = list;
    this.onRetake = onRetake;
    this.shots = [];
  }

  clear() {
    this.shots = [];
    this.list.replaceChildren();
  }

  /**
   * Show the chart's copy of a shot in place of its preview.
   * @param item the element add() returned
   * @param url the chart file route of the shot
   * @param token the staff token
   */
  async showStored(item, url, token) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (!response.ok) throw new Error(t("snapshot.copy_failed"));
    const blob = await response.blob();
    const img = h("img", { class: "shot-preview shot-stored", src: URL.createObjectURL(blob), alt: t("snapshot.stored_alt", { label: item.dataset.label }) });
    item.querySelector(".shot-preview").replaceWith(img);
    item.querySelector(".shot-source").textContent = t("snapshot.stored");
    return img;
  }

  /** Add a shot (newest first) and return its element. */
  add(shot, preview) {
    this.shots.push(shot);
    const warnings = snapshotWarnings(shot);
    const label = snapshotLabel(this.shots.length, shot.taken_at);
    const item = h(
      "li",
      { class: warnings.length ? "shot shot-warn" : "shot", dataset: { file: shot.file || "", label } },
      preview
        ? h("img", { class: "shot-preview", src: preview, alt: t("snapshot.preview_alt", { label }) })
        : h("div", { class: "shot-preview shot-none", text: t("snapshot.no_preview") }),
      h(
        "div",
        { class: "shot-facts" },
        h("p", { class: "shot-label", text: label }),
        h("p", { class: "small", text: snapshotQuality(shot) }),
        h("p", { class: "small muted shot-source", text: t(preview ? "snapshot.loading_with_preview" : "snapshot.loading") }),
        ...warnings.map((w) => h("p", { class: "shot-warning", text: w })),
        warnings.length
          ? h("button", { type: "button", class: "btn btn-small", text: t("snapshot.retake"), on: { click: () => this.onRetake() } })
          : null,
      ),
    );
    this.list.prepend(item);
    return item;
  }

  get files() {
    return this.shots.map((s) => s.file).filter(Boolean);
  }

  /** "Snapshot 1 · 12:52 PM" of each shot saved to the chart, in the order taken. */
  get labels() {
    return this.shots.filter((s) => s.file).map((s) => snapshotLabel(this.shots.indexOf(s) + 1, s.taken_at));
  }
}

/** "Snapshot 2 · 12:52 PM": how a person tells the shots of a visit apart. */
export function snapshotLabel(n, takenAt) {
  const time = formatClock(takenAt);
  return time ? t("snapshot.label_time", { n, time }) : t("snapshot.label", { n });
}
