// A QR code of a link, as an SVG element (no data: URL, no HTML strings), drawn
// from the modules qrcode-generator computes (web/vendor, MIT, vendored unchanged).

import qrcode from "/static/vendor/qrcode-generator.esm.js";

const SVG = "http://www.w3.org/2000/svg";

/** Quiet zone around the code, in modules (the standard asks for 4). */
const QUIET = 4;

/**
 * An <svg> showing `text` as a QR code (error correction L: it is read off a
 * clean screen or print, and a patient link is long, so fewer, larger modules
 * scan better; the smallest version that holds it), labelled with `label`.
 */
export function qrSvg(text, label) {
  const qr = qrcode(0, "L");
  qr.addData(text, "Byte");
  qr.make();
  const count = qr.getModuleCount();
  const size = count + 2 * QUIET;
  let d = "";
  for (let y = 0; y < count; y += 1) {
    for (let x = 0; x < count; x += 1) {
      if (qr.isDark(y, x)) d += `M${x + QUIET} ${y + QUIET}h1v1h-1z`;
    }
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "qr");
  svg.setAttribute("shape-rendering", "crispEdges");
  const back = document.createElementNS(SVG, "rect");
  back.setAttribute("width", String(size));
  back.setAttribute("height", String(size));
  back.setAttribute("fill", "#fff");
  const dark = document.createElementNS(SVG, "path");
  dark.setAttribute("d", d);
  dark.setAttribute("fill", "#000");
  svg.append(back, dark);
  return svg;
}
