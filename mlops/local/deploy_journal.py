"""Crash-safe local deployments: a journal per stage, and recovery by the next command.

A deployment writes `endpoints/<stage>/deploy.journal.json` before it starts any
server (the new instance's folder exists by then: it is the record of every server
started for it, found again by its `--instance` on the command line), and removes
the journal once the old server is stopped and the history row written. If the
deployment is killed anywhere in between, the next `mlops deploy` or
`mlops endpoint stop` of that stage, under the stage lock, reads the journal and:

- finishes it when `endpoint.json` already names the new instance and it is live:
  the old servers are stopped and the history row is written (`succeeded`,
  "finished by the next command");
- otherwise undoes it: the new instance's servers are stopped, the stage stays with
  what `endpoint.json` names, and the row says `failed` (interrupted).

Either way, servers of this home's stage that `endpoint.json` does not name
(a candidate left by a killed smoke test, an old server left by a killed hand-over)
are stopped and their folders removed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops.local.deploy_history import record_deployment
from mlops.local.endpoints import is_live, read_endpoint, stage_dir
from mlops.local.server_process import SERVER_MODULE, process_cmdline, stop_server

JOURNAL = "deploy.journal.json"


@dataclass(frozen=True)
class Journal:
    stage: str
    group: str
    version: int
    instance: str
    previous_version: int | None
    previous_instance: str | None
    started_at: str
    pid: int


def journal_path(home: Path, stage: str) -> Path:
    return stage_dir(home, stage) / JOURNAL


def begin(home: Path, journal: Journal) -> None:
    path = journal_path(home, journal.stage)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(journal), indent=2))
    os.replace(tmp, path)


def end(home: Path, stage: str) -> None:
    journal_path(home, stage).unlink(missing_ok=True)


def read_journal(home: Path, stage: str) -> Journal | None:
    try:
        return Journal(**json.loads(journal_path(home, stage).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return None  # a torn journal cannot name anything: the sweep below still runs


def servers_of(instance: str) -> list[int]:
    """Running mlops servers started for `instance` (by their command line; pid files may be
    missing when a deployment was killed right after starting one)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            line = process_cmdline(int(proc.name))
            if SERVER_MODULE in line and f"--instance {instance} " in line + " ":
                pids.append(int(proc.name))
    return pids


def stop_instance_servers(home: Path, stage: str, instance: str) -> list[int]:
    """Stop every server of `instance` and remove its folder; returns the pids stopped."""
    stopped = [pid for pid in servers_of(instance) if stop_server(pid)]
    shutil.rmtree(stage_dir(home, stage) / instance, ignore_errors=True)
    return stopped


def recover(home: Path, stage: str, group: str) -> list[str]:
    """Finish or undo an interrupted deployment and stop unrecorded servers (call under the
    stage lock). Returns one line per thing done."""
    notes: list[str] = []
    folder = stage_dir(home, stage)
    if not folder.is_dir():
        return notes
    journal = read_journal(home, stage)
    endpoint = read_endpoint(home, stage)
    if journal is not None:
        took_over = endpoint is not None and endpoint.instance == journal.instance
        if took_over and is_live(endpoint):
            reason = "finished by the next command after the deploy was interrupted"
            record_deployment(
                home, group, stage, "local", "succeeded", journal.version,
                journal.previous_version, reason, endpoint.url,
            )  # fmt: skip
            notes.append(
                f"finished an interrupted deploy of version {journal.version} to {stage} "
                f"(started {journal.started_at} by pid {journal.pid})"
            )
        else:
            keeps = f"version {endpoint.version} keeps serving" if endpoint else "nothing serves it"
            record_deployment(
                home, group, stage, "local", "failed", journal.version,
                journal.previous_version, f"interrupted; undone by the next command ({keeps})",
            )  # fmt: skip
            notes.append(
                f"undid an interrupted deploy of version {journal.version} to {stage}: {keeps}"
            )
        end(home, stage)
    keep = endpoint.instance if endpoint is not None else None
    for instance in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        if instance == keep:
            continue
        stopped = stop_instance_servers(home, stage, instance)
        if stopped:
            pids = ", ".join(map(str, stopped))
            notes.append(
                f"stopped unrecorded server(s) of {stage} instance {instance} (pid {pids})"
            )
    return notes
