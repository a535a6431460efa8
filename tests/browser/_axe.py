"""The accessibility audit of every screen the browser tests photograph:
axe-core (Deque's engine, MPL-2.0, bundled by the ``axe-playwright-python``
package) run in the page with the WCAG 2.0 and 2.1 level A and AA rules.

:func:`audit` returns the violations said in plain words (rule, impact, the
elements by CSS selector, what to fix); ``shoot()`` in conftest.py fails the
test with them. Nothing is switched off globally: a part of a page that
cannot be judged here would be excluded by its own selector in
:data:`EXCLUDE`, with the reason beside it (none is needed today).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Page

#: The rule sets of WCAG 2.1 level AA (which includes 2.0's A and AA and 2.1's A).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

#: WCAG A/AA rules that axe marks experimental (so the tags alone leave them
#: out), turned on: a visible label that is not part of the accessible name
#: (2.5.3, e.g. a button whose text gains an unread count), bold paragraphs
#: posing as headings and tables' structure (1.3.1). css-orientation-lock
#: (1.3.4) stays off: it needs the stylesheets preloaded (see RUN).
EXPERIMENTAL = ["label-content-name-mismatch", "p-as-heading", "table-fake-caption", "td-has-header"]

#: CSS selectors axe leaves out, each with why (keep this the narrowest possible).
EXCLUDE: list[str] = []

#: ``preload: false``: axe would fetch the page's stylesheets and parse them in
#: <style> elements, which the pages' Content-Security-Policy (style-src 'self')
#: refuses (console errors, and the test fails on those). Only the experimental
#: css-orientation-lock rule reads them; test_a11y.py runs it on every page in a
#: context that bypasses the CSP.
RUN = """async ([tags, experimental, exclude]) => {
  const context = exclude.length ? { include: [document], exclude: exclude.map((s) => [s]) } : document;
  const rules = Object.fromEntries(experimental.map((id) => [id, { enabled: true }]));
  const result = await axe.run(context, { runOnly: { type: "tag", values: tags }, rules, resultTypes: ["violations"], preload: false });
  return { version: axe.version, violations: result.violations };
}"""


def audit(page: Page, where: str, report: Path | None = None) -> str:
    """Run axe-core on ``page``; the violations in words ("" when there are none).
    ``report``: where to write axe's own JSON when there are violations."""
    if not page.evaluate("() => typeof window.axe === 'object' && typeof window.axe.run === 'function'"):
        page.evaluate(AXE_SCRIPT)  # through the DevTools protocol: the pages' CSP does not apply
    result: dict[str, Any] = page.evaluate(RUN, [TAGS, EXPERIMENTAL, EXCLUDE])
    violations: list[dict[str, Any]] = result["violations"]
    if not violations:
        if report is not None:
            report.unlink(missing_ok=True)  # an earlier run's, no longer true
        return ""
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(violations, indent=1, ensure_ascii=False))
    return describe(violations, f"axe-core {result['version']}: WCAG 2.1 A/AA violations on {where}")


def describe(violations: list[dict[str, Any]], title: str) -> str:
    """Violations as a person reads them: rule id and impact, help text and
    link, then each element (selector, its HTML, what axe says to fix)."""
    lines = [title + ":"]
    for v in violations:
        lines.append(f"  {v['id']} [{v.get('impact') or 'unknown'}] {v['help']} ({', '.join(t for t in v['tags'] if t.startswith('wcag'))})")
        lines.append(f"    {v['helpUrl'].split('?')[0]}")
        for n in v["nodes"]:
            target = " in ".join(" >>> ".join(t) if isinstance(t, list) else t for t in reversed(n["target"]))
            lines.append(f"    - {target}")
            lines.append(f"        {' '.join(n['html'].split())[:200]}")
            for said in (n.get("failureSummary") or "").splitlines():
                if said.strip():
                    lines.append(f"        {said.strip()}")
    return "\n".join(lines)
