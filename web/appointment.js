// The patient's page before a scheduled visit's check-in opens: when the
// appointment is and from when they can check in, in their own time zone;
// when check-in opens, the page moves on to the device check by itself.

import { $ } from "/static/common.js";
import { intlLocale, t } from "/static/i18n.js";

/** "Friday 27 November at 14:30" (en-GB), "Friday, November 27 at 02:30 PM" (en), in the patient's time zone and language. */
export function formatDay(seconds) {
  const format = new Intl.DateTimeFormat(intlLocale, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" });
  return format.format(new Date(seconds * 1000));
}

export class AppointmentWait {
  constructor() {
    this.timer = null;
  }

  /** True when the visit's check-in is not open yet (the screen should show). */
  static early(visit, now = Date.now() / 1000) {
    return Boolean(visit.scheduled_at && visit.check_in_from && now < visit.check_in_from);
  }

  /** Fill the screen and call `onOpen` once check-in opens. */
  show(visit, onOpen) {
    $("#appointment-when").textContent = t("appointment.when", { when: formatDay(visit.scheduled_at) });
    $("#appointment-opens").textContent = t("appointment.opens", { when: formatDay(visit.check_in_from) });
    this.stop();
    const wait = Math.max(0, visit.check_in_from * 1000 - Date.now());
    // Long timers are clamped by browsers: look again at most every minute.
    this.timer = setTimeout(() => (AppointmentWait.early(visit) ? this.show(visit, onOpen) : onOpen()), Math.min(wait + 500, 60000));
  }

  stop() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
