"""`campaigns report --html FILE`: one self-contained page for people who would rather look than read.

Charts are Vega-Lite specifications built with Altair and drawn by Vega-Embed as SVG. Why Vega-Lite: a chart is a
small declarative JSON document, so the page carries each chart's data and spec as plain JSON beside one script — the
Vega, Vega-Lite and Vega-Embed bundle, ~0.9 MB, inlined from `vl-convert-python` (Plotly's inlined script alone is
4.8 MB) — and the page opens with no network. Every number on the page comes from the DuckDB file's views and tables
(campaign_summary, recipient_outcomes, batches, batch_snapshots, rejects), read-only.

Each chart's container says what happened when it was drawn: `data-marks` (how many marks Vega drew) or
`data-error`; errors anywhere on the page are listed in `body[data-errors]`. The tests read those from the DOM of
the page as headless Chromium rendered it.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipelines.errors import UsageError
from pipelines.report import reader, summary_rows

STATUS_ORDER = ["completed", "no_answer", "busy", "failed", "skipped", "cancelled", "pending", "not_submitted"]
STATUS_COLORS = ["#2e7d32", "#f9a825", "#ef6c00", "#c62828", "#757575", "#9e9e9e", "#64b5f6", "#cfd8dc"]
EXAMPLES_PER_REASON = 3

# What each chart's container reports once Vega has drawn it (read by tests from the rendered DOM).
_RENDER = """
const specs = JSON.parse(document.getElementById("chart-specs").textContent);
const failed = (what) => { document.body.dataset.errors = (document.body.dataset.errors || "") + what + "\\n"; };
window.addEventListener("error", (event) => failed(String(event.message)));
window.addEventListener("unhandledrejection", (event) => failed(String(event.reason)));
Promise.all(Object.entries(specs).map(([id, spec]) => {
  const box = document.getElementById(id);
  return vegaEmbed(box, spec, {renderer: "svg", actions: false})
    .then(() => { box.dataset.marks = box.querySelectorAll("g.mark-rect path, g.mark-line path, g.mark-symbol path, g.mark-bar path, g.mark-area path").length; })
    .catch((error) => { box.dataset.error = String(error); failed(id + ": " + error); });
})).then(() => { document.body.dataset.rendered = "yes"; });
"""


@dataclass
class Page:
    """What the page shows: headline figures, charts (id → title, note, Vega-Lite spec), and HTML sections."""

    title: str
    headline: list[tuple[str, str]] = field(default_factory=list)
    charts: dict[str, tuple[str, str, dict]] = field(default_factory=dict)
    empty: list[tuple[str, str]] = field(default_factory=list)  # (title, why there is no chart)
    sections: list[str] = field(default_factory=list)


def write(db: Path, target: Path, campaign: str | None = None, by: str | None = None) -> Path:
    """Build the page from the DuckDB file and write it to `target` (to a temporary name first, then renamed)."""
    from pipelines.export import write_atomically

    text = render(build(db, campaign, by))
    write_atomically(target, lambda path: path.write_text(text, encoding="utf-8"))
    return target


def build(db: Path, campaign: str | None, by: str | None) -> Page:
    import altair as alt

    where, params = ("WHERE campaign = ?", [campaign]) if campaign else ("", [])
    with reader(db) as connection:

        def rows(query: str, extra: list | None = None) -> list[dict]:
            cursor = connection.execute(query, params + (extra or []))
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

        summary, _ = summary_rows(db, campaign)
        if campaign and not summary:
            raise UsageError(f"no campaign named {campaign!r} in {db}")
        if by is not None:
            known = rows(f"SELECT DISTINCT unnest(json_keys(variables)) AS name FROM contacts {where}")  # noqa: S608
            names = sorted(str(row["name"]) for row in known)
            if by not in names:  # the header as the spreadsheet has it ("Clinic", "Appointment Time") names its variable
                by = next((name for name in names if name == re.sub(r"\W+", "_", by.strip().lower()).strip("_")), by)
            if by not in names:
                raise UsageError(f"--by {by!r}: no such spreadsheet column among the contacts' variables "
                                 f"({', '.join(names[:15]) or 'none'})")  # fmt: skip
        totals = {key: sum(row[key] or 0 for row in summary) for key in summary[0]
                  if key not in ("campaign", "completion_rate")} if summary else {}  # fmt: skip
        outcome_from = f"FROM recipient_outcomes o LEFT JOIN batches b ON b.chunk_key = o.chunk_key {where.replace('campaign', 'o.campaign')}"
        by_status = rows(f"SELECT o.status, count(*) AS contacts {outcome_from} GROUP BY ALL")  # noqa: S608
        by_zone = rows(f"SELECT coalesce(b.timezone, 'unknown') AS timezone, o.status, count(*) AS contacts {outcome_from} "
                       "GROUP BY ALL")  # noqa: S608 # fmt: skip
        by_hour = rows(f"SELECT hour(timezone(split_part(b.timezone, '|', 1), o.attempted_at)) AS local_hour, o.status, "
                       f"count(*) AS contacts {outcome_from} {'AND' if where else 'WHERE'} o.attempted_at IS NOT NULL "
                       "AND b.timezone IS NOT NULL GROUP BY ALL")  # noqa: S608 # fmt: skip
        by_column = []
        if by is not None:
            cursor = connection.execute(
                f"SELECT coalesce(nullif(variables->>?, ''), '(empty)') AS value, status, count(*) AS contacts "
                f"FROM recipient_outcomes {where} GROUP BY ALL", [by] + params)  # noqa: S608 # fmt: skip
            by_column = [dict(zip(("value", "status", "contacts"), row)) for row in cursor.fetchall()]
        attempts = rows(f"SELECT attempts, count(*) AS contacts FROM recipient_outcomes {where} GROUP BY ALL")  # noqa: S608
        # at each sync, every batch's latest counts so far (a sync reads only the batches not finished yet)
        progress = rows(f"""WITH snaps AS (SELECT * FROM batch_snapshots {where}),
            latest AS (SELECT t.moment, s.provider_batch_id, arg_max(s.completed, s.snapshot_at) AS completed,
                              arg_max(s.failed, s.snapshot_at) AS failed
                       FROM (SELECT DISTINCT snapshot_at AS moment FROM snaps) t JOIN snaps s ON s.snapshot_at <= t.moment GROUP BY ALL)
            SELECT moment AS snapshot_at, sum(completed)::BIGINT AS completed, sum(failed)::BIGINT AS failed
            FROM latest GROUP BY ALL ORDER BY snapshot_at""")  # noqa: S608
        reasons = rows(f"SELECT reason, count(*) AS rows FROM rejects {where} GROUP BY ALL ORDER BY rows DESC")  # noqa: S608
        examples = rows(f"SELECT reason, source_file, source_sheet, source_row, raw_value FROM (SELECT *, row_number() OVER "
                        f"(PARTITION BY reason ORDER BY source_file, source_row) AS n FROM rejects {where}) "
                        f"WHERE n <= {EXAMPLES_PER_REASON} ORDER BY reason, source_file, source_row")  # noqa: S608 # fmt: skip

    page = Page(f"Campaign report — {campaign}" if campaign else "Campaign report — all campaigns")
    if totals:
        rate = totals["completed"] / totals["submitted"] if totals.get("submitted") else None
        page.headline = [("rows read", f"{totals['rows_read']:,}"), ("accepted", f"{totals['accepted']:,}"),
                         ("submitted", f"{totals['submitted']:,}"), ("completed", f"{totals['completed']:,}"),
                         ("completion rate", "–" if rate is None else f"{rate:.1%}"),
                         ("estimated dial cost", f"${totals['estimated_dial_cost']:,.2f}")]  # fmt: skip
    present = {row["status"] for row in by_status}  # the legend lists the statuses there are
    shown = [name for name in STATUS_ORDER if name in present] + sorted(present - set(STATUS_ORDER))
    palette = dict(zip(STATUS_ORDER, STATUS_COLORS))
    colors = alt.Scale(domain=shown, range=[palette.get(name, "#90a4ae") for name in shown])
    status = alt.Color("status:N", scale=colors, sort=shown, title="status")
    count = alt.Axis(tickMinStep=1, format="d")  # people and rows come whole
    flat = alt.Axis(labelAngle=0)
    names = alt.Axis(labelLimit=360)

    def add(chart_id: str, title: str, note: str, data: list[dict], chart, width: int | str = "container") -> None:
        if not data:
            page.empty.append((title, "nothing to show yet"))
            return
        page.charts[chart_id] = (title, note, chart.properties(width=width).to_dict())

    funnel = _funnel(totals) if totals else []
    add("funnel", "From spreadsheet rows to finished calls",
        "Each bar is a stage; grey bars are the rows that left on the way, where they left.", funnel,
        alt.Chart(alt.Data(values=funnel)).mark_bar().encode(
            y=alt.Y("stage:N", sort=None, title=None, axis=names), x=alt.X("rows:Q", title="rows / contacts", axis=count),
            color=alt.Color("kind:N", scale=alt.Scale(domain=["kept", "left"], range=["#1565c0", "#b0bec5"]), title=None),
            tooltip=["stage:N", "rows:Q"]))  # fmt: skip
    progress_rows = [{"at": _iso(row["snapshot_at"]), "calls": row[name], "outcome": name} for row in progress
                     for name in ("completed", "failed")]  # fmt: skip
    add("progress", "Progress over time", "Calls completed and failed, summed over batches, at each sync: calls, not "
        "contacts (a retried contact counts once per call).", progress_rows,
        alt.Chart(alt.Data(values=progress_rows)).mark_line(point=True).encode(
            x=alt.X("at:T", title="synced at (UTC)", axis=alt.Axis(format="%b %d %H:%M:%S")), y=alt.Y("calls:Q", title="calls", axis=count),
            color=alt.Color("outcome:N", scale=alt.Scale(domain=["completed", "failed"], range=["#2e7d32", "#c62828"])),
            tooltip=["at:T", "outcome:N", "calls:Q"]))  # fmt: skip
    add("status", "Outcomes by status", "Each contact's latest status.", by_status,
        alt.Chart(alt.Data(values=by_status)).mark_bar().encode(
            x=alt.X("status:N", sort=shown, title=None, axis=flat), y=alt.Y("contacts:Q", axis=count), color=status,
            tooltip=["status:N", "contacts:Q"]))  # fmt: skip
    add("timezone", "Outcomes by the recipient's time zone", "The zone (or zones) of the batch that called them.", by_zone,
        alt.Chart(alt.Data(values=by_zone)).mark_bar().encode(
            y=alt.Y("timezone:N", title=None, sort="-x", axis=names), x=alt.X("contacts:Q", stack="zero", axis=count), color=status,
            tooltip=["timezone:N", "status:N", "contacts:Q"]))  # fmt: skip
    add("hour", "Outcomes by the recipient's local hour", "The hour of the latest attempt, on the recipient's clock.", by_hour,
        alt.Chart(alt.Data(values=by_hour)).mark_bar().encode(
            x=alt.X("local_hour:O", title="local hour", scale=alt.Scale(domain=list(range(24))), axis=flat),
            y=alt.Y("contacts:Q", stack="zero", axis=count), color=status, tooltip=["local_hour:O", "status:N", "contacts:Q"]))  # fmt: skip
    if by is not None:
        add("by", f"Outcomes by {by}", f"The spreadsheet column {by!r}, as each contact's row had it.", by_column,
            alt.Chart(alt.Data(values=by_column)).mark_bar().encode(
                y=alt.Y("value:N", title=by, sort="-x", axis=names), x=alt.X("contacts:Q", stack="zero", axis=count), color=status,
                tooltip=["value:N", "status:N", "contacts:Q"]))  # fmt: skip
    add("attempts", "Attempts per contact", "Calls placed to each contact, retries included.", attempts,
        alt.Chart(alt.Data(values=attempts)).mark_bar().encode(
            x=alt.X("attempts:O", title="calls placed", axis=flat), y=alt.Y("contacts:Q", axis=count),
            tooltip=["attempts:O", "contacts:Q"]), width=90 * max(2, len(attempts)))
    add("rejects", "Rejected rows by reason", "Rows that could not become a contact; examples below.", reasons,
        alt.Chart(alt.Data(values=reasons)).mark_bar(color="#8d6e63").encode(
            y=alt.Y("reason:N", sort="-x", title=None, axis=names), x=alt.X("rows:Q", axis=count), tooltip=["reason:N", "rows:Q"]))
    if examples:
        page.sections.append(_examples(examples))
    return page


def _funnel(totals: dict) -> list[dict]:
    """Stages in order, with the rows that left between them beside the stage they left before."""
    stages = [
        ("rows read", totals["rows_read"], "kept"),
        ("… repeated within the import", totals["duplicates"], "left"),
        ("… already in the campaign", totals["already_submitted"], "left"),
        ("… called too recently (cooldown)", totals["cooled_down"], "left"),
        ("… at their state's cap on calls per 24 hours", totals["state_capped"], "left"),
        ("… rejected", totals["rejected"], "left"),
        ("… do-not-call", totals["suppressed"], "left"),
        ("accepted", totals["accepted"], "kept"),
        ("submitted", totals["submitted"], "kept"),
        ("completed", totals["completed"], "kept"),
        ("failed (busy, no answer, failed)", totals["failed"], "kept"),
        ("skipped", totals["skipped"], "kept"),
    ]
    return [{"stage": name, "rows": int(count or 0), "kind": kind} for name, count, kind in stages]


def _examples(examples: list[dict]) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(str(row['reason']))}</td><td>{html.escape(str(row['source_file']))}</td>"
        f"<td>{html.escape(str(row['source_sheet'] or ''))}</td><td class=num>{row['source_row']}</td>"
        f"<td><code>{html.escape(str(row['raw_value'] if row['raw_value'] is not None else ''))}</code></td></tr>"
        for row in examples
    )
    return (f"<section><h2>Rejected rows: examples</h2><p>Up to {EXAMPLES_PER_REASON} per reason, with the row number the "
            "spreadsheet shows.</p><table><thead><tr><th>reason</th><th>file</th><th>sheet</th><th>row</th><th>value</th>"
            f"</tr></thead><tbody>{cells}</tbody></table></section>")  # fmt: skip


def _iso(moment) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).isoformat()
    return str(moment)


def render(page: Page) -> str:
    """The page as HTML: every script and datum inline."""
    import vl_convert

    script = vl_convert.javascript_bundle(_RENDER)
    specs = json.dumps({chart_id: spec for chart_id, (_, _, spec) in page.charts.items()}).replace("</", "<\\/")
    figures = "".join(f"<div class=figure><strong>{html.escape(value)}</strong><span>{html.escape(label)}</span></div>"
                      for label, value in page.headline)  # fmt: skip
    charts = "".join(
        f"<section><h2>{html.escape(title)}</h2><p>{html.escape(note)}</p><div class=chart id={chart_id}></div></section>"
        for chart_id, (title, note, _) in page.charts.items()
    )
    empty = "".join(f"<section><h2>{html.escape(title)}</h2><p class=empty>{html.escape(why)}</p></section>"
                    for title, why in page.empty)  # fmt: skip
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
<title>{html.escape(page.title)}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 980px; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }} h2 {{ font-size: 1.15rem; margin: 2rem 0 .2rem; }}
p {{ color: #555; margin: .2rem 0 .6rem; }} .chart {{ width: calc(100% - 4px); }}
.figures {{ display: flex; flex-wrap: wrap; gap: .6rem; margin: 1rem 0; }}
.figure {{ flex: 1 1 0; border: 1px solid #ddd; border-radius: 6px; padding: .5rem .8rem; min-width: 7rem; }}
section {{ overflow-x: auto; }} code {{ word-break: break-all; }}
.figure strong {{ display: block; font-size: 1.35rem; }} .figure span {{ color: #666; font-size: .85rem; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9rem; }} td, th {{ border-bottom: 1px solid #eee; padding: .3rem .5rem; text-align: left; }}
td.num {{ text-align: right; }} .empty {{ font-style: italic; }}
</style></head>
<body>
<h1>{html.escape(page.title)}</h1><p>Generated {generated} from the campaigns DuckDB file.</p>
<div class=figures>{figures}</div>
{charts}{empty}{"".join(page.sections)}
<script type=application/json id=chart-specs>{specs}</script>
<script type=module>{script}</script>
</body></html>
"""
