// The landing page: its words come from the catalogues, and it has the language switcher.
import "/static/i18n.js";
