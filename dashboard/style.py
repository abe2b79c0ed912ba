"""The look of the dashboard: one stylesheet, inlined into the page.

The collector often runs on machines without internet access, so nothing is fetched from a
CDN: the stylesheet travels inside the HTML page and Dash serves its own scripts.
"""

from __future__ import annotations

CSS = """
:root {
  --al-ink: #1f2937; --al-muted: #6b7280; --al-line: #e5e7eb; --al-bg: #f5f6f8;
  --al-card: #ffffff; --al-accent: #2563eb; --al-good: #047857; --al-bad: #b91c1c;
  --al-font: Inter, system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--al-bg); color: var(--al-ink); font: 14px/1.45 var(--al-font); }
a { color: var(--al-accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }

.al-header { display: flex; align-items: center; gap: 24px; padding: 0 28px; height: 52px;
  background: #111827; color: #f9fafb; }
.al-brand { color: #f9fafb; font-weight: 650; font-size: 16px; letter-spacing: 0.2px; }
.al-brand:hover { text-decoration: none; }
.al-brand span { color: #93c5fd; }
.al-nav a { color: #d1d5db; margin-right: 18px; }
.al-main { max-width: 1320px; margin: 0 auto; padding: 20px 28px 48px; }

.al-filters { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 16px;
  margin-bottom: 18px; }
.al-filter { display: flex; flex-direction: column; gap: 4px; min-width: 240px; }
.al-filter label { font-size: 12px; color: var(--al-muted); font-weight: 600;
  text-transform: uppercase; letter-spacing: 0.04em; }
.al-notice { background: #fffbeb; border: 1px solid #fde68a; color: #92400e;
  padding: 8px 12px; border-radius: 8px; margin-bottom: 14px; }

.al-cards { display: grid; grid-template-columns: repeat(2, 1fr); gap: 10px;
  margin-bottom: 20px; }
@media (min-width: 720px) { .al-cards { grid-template-columns: repeat(4, 1fr); } }
/* Wide screens: every card in one row, however many the page has (eight or nine). */
@media (min-width: 1240px) { .al-cards { grid-template-columns: none; grid-auto-flow: column;
  grid-auto-columns: minmax(0, 1fr); } }
.al-card { background: var(--al-card); border: 1px solid var(--al-line); border-radius: 10px;
  padding: 12px 14px; min-height: 88px; }
.al-card-label { font-size: 12px; color: var(--al-muted); font-weight: 600; }
.al-card-value { display: inline-block; font-size: 22px; font-weight: 650; margin-top: 4px;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.al-card-note { font-size: 12px; color: var(--al-muted); margin-top: 2px; }
.al-card { display: flex; flex-direction: column; align-items: flex-start; }
.al-spark { height: 44px; margin-top: auto; padding-top: 6px; align-self: stretch; }

.al-section { background: var(--al-card); border: 1px solid var(--al-line); border-radius: 10px;
  padding: 16px 18px; margin-bottom: 20px; }
.al-section-head { display: flex; align-items: baseline; justify-content: space-between;
  gap: 16px; flex-wrap: wrap; margin-bottom: 8px; }
.al-section h2 { font-size: 16px; margin: 0; }
.al-section-aside { color: var(--al-muted); margin: 0; font-size: 13px; }
.al-metric-choice { display: flex; flex-wrap: wrap; gap: 14px; margin: 4px 0 8px; }
.al-metric-choice label { display: inline-flex; align-items: center; gap: 6px; cursor: pointer; }

.al-table-wrap { overflow-x: auto; }
.al-table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.al-table th { text-align: left; font-size: 12px; color: var(--al-muted); font-weight: 600;
  padding: 8px 8px; border-bottom: 1px solid var(--al-line); vertical-align: bottom;
  max-width: 120px; }
.al-table td { padding: 7px 8px; border-bottom: 1px solid #f0f1f3; white-space: nowrap; }
.al-table tbody tr:hover { background: #f9fafb; }
.al-table .num { text-align: right; }
.al-table-compact { font-size: 13px; }
.al-table-compact th { max-width: 84px; padding: 6px 5px; }
.al-table-compact td { padding: 6px 5px; }
.al-undefined { color: var(--al-muted); cursor: help; text-decoration: underline dotted #9ca3af;
  text-underline-offset: 3px; }
.al-card-value.al-undefined { text-decoration: none; }
.al-legend { color: var(--al-muted); font-size: 12px; margin: 8px 0 0; }

.al-badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; text-decoration: none; }
.al-badge-good { background: #d1fae5; color: var(--al-good); }
.al-badge-bad { background: #fee2e2; color: var(--al-bad); }
.al-badge-neutral { background: #f3f4f6; color: var(--al-muted); }
.al-card-value.al-badge { font-size: 16px; padding: 3px 12px; margin-top: 10px; }

.al-pager { display: flex; align-items: center; justify-content: space-between; gap: 12px;
  margin-top: 10px; }
.al-pager-line { color: var(--al-muted); }
.al-pager-links { display: flex; gap: 8px; }
.al-button { display: inline-block; padding: 5px 12px; border: 1px solid var(--al-line);
  border-radius: 8px; background: #fff; color: var(--al-ink); }
.al-button:hover { background: #f3f4f6; text-decoration: none; }
.al-button-disabled { color: #c0c4cc; cursor: default; }
.al-button-disabled:hover { background: #fff; }

.al-empty { text-align: center; padding: 36px 20px; color: var(--al-muted);
  background: var(--al-card); border: 1px dashed #d1d5db; border-radius: 10px; }
.al-empty h3 { color: var(--al-ink); margin: 0 0 6px; font-size: 16px; }
.al-empty p { margin: 4px 0; }
.al-empty pre { display: inline-block; text-align: left; background: #f3f4f6; color: var(--al-ink);
  padding: 10px 14px; border-radius: 8px; margin: 10px 0; }

/* Dash marks a component whose callback is running; dimming it is a spinner that costs no
   extra components (a dcc.Loading wrapper re-renders its whole subtree on every update). */
[data-dash-is-loading="true"] { opacity: 0.55; transition: opacity 0.15s ease-in; }

.al-sql-text { width: 100%; min-height: 150px; font: 13px/1.5 ui-monospace, SFMono-Regular,
  Menlo, Consolas, monospace; padding: 10px 12px; border: 1px solid var(--al-line);
  border-radius: 8px; resize: vertical; color: var(--al-ink); }
.al-sql-tools { display: flex; gap: 8px; margin-top: 8px; }
.al-primary { background: var(--al-accent); border-color: var(--al-accent); color: #fff;
  cursor: pointer; font-weight: 600; }
.al-primary:hover { background: #1d4ed8; }
.al-sql-notice { background: #fef2f2; border: 1px solid #fecaca; color: var(--al-bad);
  border-radius: 10px; padding: 12px 16px; margin-bottom: 20px; }
.al-sql-notice h3 { margin: 0 0 6px; font-size: 15px; }
.al-sql-error { white-space: pre-wrap; margin: 0; font-size: 13px; }

.al-back { display: inline-block; margin-bottom: 8px; }
.al-title { font-size: 20px; margin: 0; }
.al-subtitle { color: var(--al-muted); margin: 2px 0 16px; }
"""

INDEX_STRING = (
    """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <style>"""
    + CSS
    + """</style>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
)
