"""The search page at `/`: one server-rendered HTML form and its results, no script, no build step.

The form submits with GET, so a result page is a plain URL (`/?q=...&mode=...&k=...`) that
can be bookmarked or fetched by curl. Every value from the index or the request is escaped.
"""
from __future__ import annotations

from html import escape

from ..render import location
from ..search import MODES, SAFETY

TEXT_CHARS = 800  # of a hit's text on the page; /search gives all of it

STYLE = """
body { font: 16px/1.45 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
form { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center; }
input[name=q] { flex: 1 1 20rem; font-size: 1.1rem; padding: .4rem; }
ol { padding-left: 1.5rem; } li { margin: 1rem 0; }
.where { font-family: ui-monospace, monospace; font-size: .9rem; color: #05a; }
.heading { font-weight: 600; } .score { color: #777; font-size: .85rem; }
.text { white-space: pre-wrap; margin: .3rem 0 0; }
.flagged, .blocked, .error { padding: .5rem .8rem; border-radius: 4px; margin: 1rem 0; }
.flagged { background: #fff3cd; } .blocked, .error { background: #f8d7da; }
"""


def _options(values, chosen) -> str:
    return "".join(f'<option value="{v}"{" selected" if v == chosen else ""}>{v}</option>' for v in values)


def render_page(query: str = "", mode: str = "teacher", k: int = 10, safety: str = "off", result=None,
                error: str | None = None) -> str:
    parts = [f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(query) + " - " if query else ""}genretrieve</title><style>{STYLE}</style></head>
<body><h1>genretrieve</h1>
<form method="get" action="/" role="search">
<input name="q" type="search" value="{escape(query)}" placeholder="Ask a question about your documents" autofocus aria-label="query">
<label>mode <select name="mode">{_options(MODES, mode)}</select></label>
<label>k <input name="k" type="number" min="1" max="1000" value="{k}" style="width:4rem"></label>
<label>safety <select name="safety">{_options(SAFETY, safety)}</select></label>
<button type="submit">Search</button>
</form>"""]
    if error:
        parts.append(f'<p class="error" id="error">{escape(error)}</p>')
    if result is not None:
        parts.append(_results(result))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _results(result) -> str:
    if result.blocked:
        return ('<p class="blocked" id="blocked">Blocked: this query was judged harmful, so no results are shown '
                '(safety block).</p>')
    parts = []
    if result.flagged:
        parts.append('<p class="flagged" id="flagged">Flagged: this query looks like a harmful request '
                     '(safety warn); the results are shown anyway.</p>')
    if not result.hits:
        parts.append('<p id="no-hits">No hits.</p>')
        return "\n".join(parts)
    parts.append('<ol id="hits">')
    for hit in result.hits:
        text = hit.text if len(hit.text) <= TEXT_CHARS else hit.text[:TEXT_CHARS] + "..."
        heading = f'<div class="heading">{escape(hit.heading)}</div>' if hit.heading else ""
        parts.append(f'<li class="hit"><span class="where">{escape(location(hit))}</span> '
                     f'<span class="score">{hit.score:.3f}</span>{heading}'
                     f'<p class="text">{escape(text)}</p></li>')
    parts.append("</ol>")
    return "\n".join(parts)
