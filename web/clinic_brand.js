// The top bar of the patient's and the guest's pages: "Video visit with
// <clinic name>" once the clinic's admin has named the clinic (admin_view.js),
// "Video visit" until then. The brand element names the sessionStorage key of
// the page's token (data-clinic-brand); the name is the clinic's own words,
// never translated.

import { readClaims } from "/static/common.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";

/** The page's token: still in the address (this module may run first) or kept in the tab. */
function pageToken(key) {
  return new URLSearchParams(location.hash.slice(1)).get("t") || sessionStorage.getItem(key);
}

export async function showClinicBrand(el) {
  const token = pageToken(el.dataset.clinicBrand);
  const claims = token ? readClaims(token) : null;
  // An expired link is not sent (the server would refuse it): the title stays generic.
  if (!claims || !claims.clinic || (claims.exp && claims.exp * 1000 <= Date.now())) return;
  try {
    const response = await fetch(`/api/clinics/${encodeURIComponent(claims.clinic)}/name`, {
      headers: { Authorization: `Bearer ${token}` },
      credentials: "same-origin",
    });
    const data = response.ok ? await response.json() : null;
    if (!data || !data.display_name) return;
    el.removeAttribute("data-i18n");
    el.replaceChildren(...tNodes("page.brand_clinic", { clinic: untranslated(data.display_name) }));
    el.dataset.clinic = "named";
  } catch {
    // The generic title stays: the page works the same without the clinic's name.
  }
}

const brand = document.querySelector("[data-clinic-brand]");
if (brand) showClinicBrand(brand);
