"""The status page of `mlops ui`: one HTML page from a plain snapshot (pure: data in, HTML out).

What an approver wants at a glance: the versions with their approval state and card,
what each stage serves and since when, the deploy history with outcomes, and the last
monitor result per stage. No script and no external file: the page works offline and a
Content-Security-Policy of `default-src 'none'` can hold it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from mlops.core.report_format import human

STYLE = """
body{font-family:system-ui,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.Approved,.succeeded,.healthy,.ok{color:#17692e}.Rejected,.failed,.down,.violation{color:#a1161b}
.PendingManualApproval,.refused,.no_data{color:#8a5a00}.muted{color:#777}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _cls(value: object) -> str:
    return _e(str(value).replace(" ", "_"))


def _table(head: Sequence[str], rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f"<p class=muted>{_e(empty)}</p>"
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def version_rows(versions: Sequence[Mapping], metrics: Sequence[str]) -> list[str]:
    rows = []
    for v in reversed(versions):  # newest first
        card = f'<a href="/cards/{_e(v["version"])}">card</a>'  # rendered when opened
        values = "".join(
            f"<td class=n>{human(v['metrics'][m], 4) if m in v['metrics'] else '–'}</td>"
            for m in metrics
        )
        serving = ", ".join(v.get("serving", ())) or ""
        rows.append(
            f"<tr id=version-{_e(v['version'])}><td class=n>{_e(v['version'])}</td>"
            f"<td class={_cls(v['approval_status'])}>{_e(v['approval_status'])}</td>"
            f"{values}<td>{_e(serving)}</td><td>{_e(v['created_at'])}</td>"
            f"<td><code>{_e((v.get('git_commit') or '')[:10])}</code></td><td>{card}</td></tr>"
        )
    return rows


def stage_rows(stages: Sequence[Mapping]) -> list[str]:
    rows = []
    for s in stages:
        monitor = s.get("monitor") or {}
        last = (
            f"<span class={_cls(monitor.get('status'))}>{_e(monitor.get('status'))}</span> "
            f"{_e(monitor.get('generated_at', ''))}<br><small>{_e(monitor.get('summary', ''))}</small>"
            if monitor
            else "<span class=muted>never run</span>"
        )
        if not s.get("deployed"):
            rows.append(
                f"<tr id=stage-{_e(s['stage'])}><td>{_e(s['stage'])}</td>"
                f"<td colspan=4 class=muted>not deployed</td><td>{last}</td></tr>"
            )
            continue
        rows.append(
            f"<tr id=stage-{_e(s['stage'])}><td>{_e(s['stage'])}</td>"
            f"<td class=n>version {_e(s.get('version'))}</td><td>{_e(s.get('deployed_at'))}</td>"
            f"<td class={_cls(s.get('health'))}>{_e(s.get('health'))}</td>"
            f"<td><code>{_e(s.get('url'))}</code></td><td>{last}</td></tr>"
        )
    return rows


def deployment_rows(deployments: Sequence[Mapping]) -> list[str]:
    rows = []
    for d in deployments:
        change = (
            f"{_e(d.get('previous_version'))} → {_e(d.get('version'))}"
            if d.get("previous_version") is not None
            else _e(d.get("version") if d.get("version") is not None else "–")
        )
        rows.append(
            f"<tr><td>{_e(d.get('at'))}</td><td>{_e(d.get('stage'))}</td><td>{change}</td>"
            f"<td class={_cls(d.get('result'))}>{_e(d.get('result'))}</td>"
            f"<td>{_e(d.get('reason'))}</td><td>{_e(d.get('user'))}</td></tr>"
        )
    return rows


def cost_rows(costs: Sequence[Mapping]) -> list[str]:
    return [
        f"<tr><td>{_e(c['stage'])}</td><td>{_e(c['what'])}</td>"
        f"<td class=n>{_e(c['monthly'])}</td></tr>"
        for c in costs
    ]


def render(snapshot: Mapping) -> str:
    metrics = snapshot.get("metrics", ())
    title = f"{snapshot['group']}: models and stages"
    costs = snapshot.get("costs") or ()
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width"><link rel=icon href="data:,">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p class=muted>Read-only view of {_e(snapshot.get('home', ''))}, as of "
        f"{_e(snapshot.get('generated_at', ''))}. Reload to refresh. Approve with "
        "<code>mlops models approve N</code>; experiment runs: <code>mlops ui --mlflow</code>.</p>"
        "<h2>Stages</h2>"
        + _table(
            ["stage", "serves", "since", "health", "url", "last monitor"],
            stage_rows(snapshot.get("stages", ())),
            "no stages",
        )
        + "<h2>Model versions</h2>"
        + _table(
            ["version", "approval", *metrics, "serving", "registered", "commit", "model card"],
            version_rows(snapshot.get("versions", ()), metrics),
            "no versions registered yet: run `mlops pipeline run`",
        )
        + "<h2>Deploy history</h2>"
        + _table(
            ["when", "stage", "version", "outcome", "reason", "by"],
            deployment_rows(snapshot.get("deployments", ())),
            "no deployments yet",
        )
        + (
            "<h2>Endpoint cost on SageMaker (estimate)</h2>"
            + _table(["stage", "configuration", "per month"], cost_rows(costs), "")
            if costs
            else ""
        )
        + "</body></html>\n"
    )
