"""`mlops ui`: the local status page, served read-only on 127.0.0.1.

Each request reads the state afresh (the registry, the stages' endpoint files, the
deploy history, the last monitor report, the cards) and renders
`mlops.core.status_page`. The server only answers GET: it changes nothing.

The standard library's ThreadingHTTPServer is enough here: one user on this machine,
two routes, nothing to install; the endpoints' uvicorn stack is for model traffic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mlops.core.config import Config
from mlops.core.errors import UsageError
from mlops.core.model_card import HEADLINE
from mlops.core.registry import utc_now
from mlops.core.stages import STAGES
from mlops.core.status_page import render
from mlops.local.cards import card_html
from mlops.local.deploy import stage_status
from mlops.local.deploy_history import list_deployments
from mlops.local.registry import LocalRegistry

HOST = "127.0.0.1"  # lineage and data hashes: never beyond this machine
CARD_PATH = re.compile(r"^/cards/(\d+)$")
# No script, no external file: the page needs nothing else, and a page that tried would fail.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def last_monitor(home: Path, stage: str) -> dict:
    """The last `mlops monitor --stage S` report's status and summary ({} if never run)."""
    try:
        report = json.loads((home / "reports" / f"monitor-{stage}" / "monitor.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: report.get(k) for k in ("status", "summary", "generated_at")}


def snapshot(cfg: Config, home: Path, costs: list[dict] | None = None) -> dict:
    """Everything the page shows, read now."""
    registry = LocalRegistry(home, cfg.model_package_group)
    versions = registry.list()
    stages = []
    for stage in STAGES:
        status = stage_status(home, cfg.model_package_group, registry, stage)
        stages.append({**status, "monitor": last_monitor(home, stage)})
    serving: dict[int, list[str]] = {}
    for s in stages:
        if s.get("deployed"):
            serving.setdefault(s["version"], []).append(s["stage"])
    metrics = HEADLINE.get(cfg.task, ())[:2] if cfg.task in HEADLINE else ()
    return {
        "group": cfg.model_package_group,
        "home": str(home),
        "generated_at": utc_now(),
        "metrics": list(metrics),
        "versions": [
            {
                "version": v.version,
                "approval_status": v.approval_status,
                "created_at": v.created_at,
                "metrics": v.metrics,
                "git_commit": v.lineage.get("git_commit", ""),
                "serving": serving.get(v.version, []),
            }
            for v in versions
        ],
        "stages": stages,
        "deployments": list_deployments(home, cfg.model_package_group, limit=50),
        "costs": costs or [],
    }


def handler_for(
    page: Callable[[], str], card: Callable[[int], str | None], port: Callable[[], int]
) -> type[BaseHTTPRequestHandler]:
    class StatusHandler(BaseHTTPRequestHandler):
        server_version = "mlops-ui"

        def log_message(self, format: str, *args) -> None:  # quiet: no line per request
            pass

        def _send(self, status: int, body: str, content_type: str = "text/html") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _host_ok(self) -> bool:
            """Another site's page that resolves its name to 127.0.0.1 (DNS rebinding)
            sends its own Host: only this machine's names are answered."""
            host = (self.headers.get("Host") or "").lower()
            return host in {f"{HOST}:{port()}", f"localhost:{port()}"}

        def do_GET(self) -> None:
            if not self._host_ok():
                self._send(HTTPStatus.MISDIRECTED_REQUEST, "unknown host\n", "text/plain")
                return
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(HTTPStatus.OK, page())
                return
            match = CARD_PATH.match(path)
            if match:
                text = card(int(match.group(1)))
                if text is None:
                    self._send(HTTPStatus.NOT_FOUND, "no such version\n", "text/plain")
                else:
                    self._send(HTTPStatus.OK, text)
                return
            self._send(HTTPStatus.NOT_FOUND, "not found\n", "text/plain")

        do_HEAD = do_GET

        def _read_only(self) -> None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, "read-only\n", "text/plain")

        do_POST = do_PUT = do_DELETE = do_PATCH = _read_only

    return StatusHandler


def status_server(cfg: Config, home: Path, port: int = 0, costs: list[dict] | None = None):
    """A ThreadingHTTPServer on 127.0.0.1 (port 0: a free one); call serve_forever()."""
    server: ThreadingHTTPServer | None = None

    def page() -> str:
        return render(snapshot(cfg, home, costs))

    def card(version: int) -> str | None:
        """Rendered now, so its approval history is today's; None for no such version."""
        try:
            return card_html(cfg, home, version)
        except UsageError:
            return None

    server = ThreadingHTTPServer(
        (HOST, port), handler_for(page, card, lambda: server.server_address[1])
    )
    server.daemon_threads = True
    return server
