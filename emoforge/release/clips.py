"""The clip browser: one static, filterable page of segments with their media and jury.

``ClipBrowser.write`` picks the most useful segments to review first: those waiting for
review, then the rest, each group by review priority (expected label changes per minute of
review, ``emoforge/quality/review_priority.py``), and cuts their media
(``clip_media.ClipMediaCutter``) and writes ``index.html`` beside a ``media/`` folder. The
page opens from disk: no server, no data inlined into scripts (every value is an escaped
HTML attribute), and a small script filters by label, confidence, agent disagreement,
label quality and review status. The query string sets the filters
(``index.html?label=sad&status=waiting&agents=disagree&maxconf=0.6``), so a link, or a test,
can open a filtered view. The script also writes each audio element's readiness into
``data-ready-state`` / ``data-duration``, which a headless browser's DOM dump shows.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.quality.review_priority import queue_item
from emoforge.release.clip_card import FONT_FAMILY, esc, render_card, review_status
from emoforge.release.clip_media import ClipMediaCutter
from emoforge.release.splits import release_label
from emoforge.storage.records import Record, SegmentRow
from emoforge.storage.safe_files import make_dirs, write_text

DEFAULT_MAX_CLIPS = 200  # ~40 KB of media per clip (one Opus snippet, three JPEGs): ~8 MB in all
_STATUS_ORDER = {"waiting": 0, "not-flagged": 1, "verified": 2, "failed": 3}

_CSS = (
    f"body{{font-family:{FONT_FAMILY};margin:1.5em;max-width:1200px;color:#222}}"
    "form{position:sticky;top:0;background:#f6f6f6;padding:.5em;border:1px solid #ddd;z-index:1}"
    "form label{margin-right:1em}input[type=number]{width:4.5em}"
    "article.clip{border:1px solid #ccc;border-radius:4px;margin:1em 0;padding:.5em 1em}"
    "article h2{font-size:1.05em;margin:.2em 0}.meta{color:#555;margin:.2em 0}"
    ".frames{display:flex;gap:.5em;flex-wrap:wrap}figure{margin:0}figure img{width:240px;border:1px solid #ddd}"
    "figcaption{font-size:.8em;color:#555}.missing,.fail{color:#b00}.w{cursor:pointer}.w:hover{background:#ffd}"
    "table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ddd;padding:.15em .5em;text-align:left;"
    "vertical-align:top}.ann{border-left:3px solid #4c72b0;padding-left:.6em;margin:.6em 0}"
    ".jury{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:0 1em}"
    ".ann{overflow-x:auto}table.scores{font-size:.85em}.ann h4{margin:.3em 0}"
    ".notes{font-size:.85em;color:#555}.w sup{font-size:.6em;color:#888;margin-left:1px}"
    ".ann.failed{border-color:#b00}.bar{display:inline-block;height:.8em;background:#4c72b0}"
    ".st{padding:0 .3em;border-radius:3px}.st.waiting{background:#fdd}.st.verified{background:#dfd}"
    ".st.failed{background:#ddd}"
)

_JS = """
(function () {
  const form = document.getElementById('filters');
  const list = document.getElementById('clips');
  const clips = Array.from(list.querySelectorAll('article.clip'));
  for (const [key, value] of new URLSearchParams(location.search)) {
    const el = form.elements.namedItem(key);
    if (el) el.value = value;
  }
  const num = (v, d) => { const x = parseFloat(v); return isNaN(x) ? d : x; };
  let sortedBy = 'queue';
  function sortClips(key) {
    const field = {priority: 'priority', quality: 'quality', confidence: 'confidence'}[key] || 'order';
    const sign = key === 'priority' ? -1 : 1;  // the highest priority first, the lowest score first
    const value = (c) => { const x = parseFloat(c.dataset[field]); return isNaN(x) ? 1e9 : sign * x; };
    const sorted = clips.slice().sort((a, b) => value(a) - value(b));
    for (const c of sorted) list.appendChild(c);  // moving a playing <audio> pauses it: only on a new order
    sortedBy = key;
  }
  function apply() {
    const f = form.elements;
    const lo = num(f.minconf.value, -1), hi = num(f.maxconf.value, 2), maxq = num(f.maxq.value, 2);
    let shown = 0;
    for (const c of clips) {
      const d = c.dataset, conf = num(d.confidence, -1), q = num(d.quality, -1);
      const keep = (!f.label.value || d.label === f.label.value)
        && (!f.status.value || d.status === f.status.value)
        && (!f.agents.value || d.agents === f.agents.value)
        && conf >= lo && conf <= hi && (maxq > 1 || (q >= 0 && q <= maxq));
      c.hidden = !keep;
      shown += keep;
    }
    if (f.sort.value !== sortedBy) sortClips(f.sort.value);
    document.getElementById('shown').textContent = shown;
    document.body.dataset.shown = shown;
  }
  form.addEventListener('input', apply);
  form.addEventListener('change', apply);
  apply();
  for (const a of document.querySelectorAll('audio')) {
    const mark = () => {
      a.dataset.readyState = a.readyState;
      a.dataset.duration = isFinite(a.duration) ? a.duration.toFixed(3) : '';
    };
    a.addEventListener('loadedmetadata', mark);
    a.addEventListener('error', () => { a.dataset.error = a.error ? a.error.code : '?'; });
    if (a.readyState >= 1) mark();
  }
  list.addEventListener('click', (ev) => {  // a word seeks its clip's audio to where it is said
    const w = ev.target.closest('[data-t]');
    const a = w && w.closest('article').querySelector('audio');
    if (a) { a.currentTime = parseFloat(w.dataset.t); a.play(); }
  });
})();
"""


class ClipBrowserSummary(Record):
    index: str = Field(description="Path of the page.")
    shown: int = Field(description="Segments on the page.")
    total: int = Field(description="Segments in the corpus.")
    without_media: int = Field(description="Clips with neither audio nor frames (each says why).")


class ClipBrowser:
    """Writes the clip browser of a corpus's rows into a folder."""

    def __init__(self, review: ReviewConfig, max_clips: int = DEFAULT_MAX_CLIPS) -> None:
        self.review = review
        self.max_clips = max_clips

    def priorities(self, rows: list[SegmentRow]) -> dict[str, float]:
        """Expected label changes per minute of review, for the rows the review queue ranks."""
        return {r.row_id: item.priority for r in rows if (item := queue_item(r, self.review)) is not None}

    def write(self, rows: list[SegmentRow], folder: str | Path) -> ClipBrowserSummary:
        folder = make_dirs(Path(folder))  # refused when the folder is a link (a shared corpus's)
        priority = self.priorities(rows)
        chosen = sorted(
            (r for r in rows if r.segment is not None),
            key=lambda r: (_STATUS_ORDER[review_status(r)], -priority.get(r.row_id, 0.0), r.row_id),
        )[: self.max_clips]
        media = ClipMediaCutter(folder).cut_all(chosen)
        labels = {r.row_id: release_label(r) for r in chosen}
        cards = "".join(
            render_card(r, media[r.row_id], labels[r.row_id], i, priority.get(r.row_id)) for i, r in enumerate(chosen)
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>emoforge clips</title>"
            f"<style>{_CSS}</style></head><body><h1>Clips</h1>"
            f"<p>{len(chosen)} of {len(rows)} rows, the most useful to review first (waiting for review, then "
            "the rest, each by expected label changes per minute of review); "
            "<code>emoforge report --max-clips N</code> shows more. "
            "Click a word to hear it.</p>"
            f"{self._form(sorted({lab for lab in labels.values() if lab}))}"
            f"<p><span id='shown'>{len(chosen)}</span> of {len(chosen)} clips shown</p>"
            f"<main id='clips'>{cards}</main><script>{_JS}</script></body></html>"
        )
        index = folder / "index.html"
        write_text(index, page, root=folder)
        return ClipBrowserSummary(
            index=str(index),
            shown=len(chosen),
            total=len(rows),
            without_media=sum(not (m.audio or m.frames) for m in media.values()),
        )

    @staticmethod
    def _form(labels: list[str]) -> str:
        def select(name: str, options: list[tuple[str, str]]) -> str:
            opts = "".join(f"<option value='{esc(v)}'>{esc(t)}</option>" for v, t in options)
            return f"<select name='{name}'>{opts}</select>"

        def number(name: str) -> str:
            return f"<input type='number' name='{name}' min='0' max='1' step='0.05'>"

        sorts = [
            ("queue", "review queue"),
            ("priority", "review priority"),
            ("quality", "label quality"),
            ("confidence", "confidence"),
        ]
        statuses = [("", "any"), ("waiting", "waiting"), ("verified", "verified"), ("not-flagged", "not flagged")]
        return (
            "<form id='filters' onsubmit='return false'>"
            f"<label>label {select('label', [('', 'any')] + [(lab, lab) for lab in labels])}</label>"
            f"<label>confidence {number('minconf')} to {number('maxconf')}</label>"
            f"<label>agents {select('agents', [('', 'any'), ('disagree', 'disagree'), ('agree', 'agree')])}</label>"
            f"<label>review {select('status', [*statuses, ('failed', 'failed')])}</label>"
            f"<label>label quality ≤ {number('maxq')}</label>"
            f"<label>sort {select('sort', sorts)}</label>"
            "</form>"
        )
