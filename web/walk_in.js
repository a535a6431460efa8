// The clinic's standing walk-in link (/clinic/<clinic>): name and reason,
// then on to the patient page with a fresh visit link.

const form = document.getElementById("walk-in-form");
const button = document.getElementById("submit");

/** The clinic id from the address: /clinic/<clinic>. */
function clinicFromPath() {
  const part = location.pathname.split("/").filter(Boolean)[1] || "";
  try {
    return decodeURIComponent(part);
  } catch {
    return "";
  }
}

function showError(title, text) {
  document.getElementById("walk-in-error-title").textContent = title;
  document.getElementById("walk-in-error-text").textContent = text;
  const box = document.getElementById("walk-in-error");
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

/** What to tell the person for each answer of the server. */
function explain(status, error) {
  if (status === 404) return ["This clinic has no walk-in link", "Check the address, or contact the clinic for a visit link."];
  if (status === 429) return ["Too many check-ins", (error && error.message) || "Wait a minute and try again."];
  if (status === 400) return ["Please check the form", (error && error.message) || "Some information is missing."];
  if (status === 503) return ["The clinic is not reachable right now", "Please try again in a minute."];
  return ["Check-in did not work", (error && error.message) || `The server answered ${status}. Try again.`];
}

async function walkIn(event) {
  event.preventDefault();
  document.getElementById("walk-in-error").hidden = true;
  const clinic = clinicFromPath();
  const name = document.getElementById("name").value.trim();
  const reason = document.getElementById("reason").value.trim();
  if (!name) {
    showError("Please enter your name", "The clinic needs your name to know who is waiting.");
    document.getElementById("name").focus();
    return;
  }
  button.disabled = true;
  button.textContent = "Checking in…";
  try {
    const response = await fetch(`/api/clinics/${encodeURIComponent(clinic)}/walk-in`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, reason }),
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 201 && body.patient_link) {
      location.assign(body.patient_link);
      return;
    }
    const [title, text] = explain(response.status, body.error);
    showError(title, text);
  } catch {
    showError("No connection", "We could not reach the clinic. Check your internet connection and try again.");
  } finally {
    button.disabled = false;
    button.textContent = "Continue";
  }
}

form.addEventListener("submit", walkIn);
if (clinicFromPath()) {
  document.getElementById("title").textContent = `Check in at ${clinicFromPath()}`;
} else {
  const [title, text] = explain(404);
  showError(title, text);
}
