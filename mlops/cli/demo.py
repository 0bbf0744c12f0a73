"""`make demo`: the story of a change on the local backend, from raw data to prod.

the data (the config's committed sample, or --data FILE, only ever read) -> validate -> pipeline -> approve -> deploy staging -> smoke test ->
promote -> smoke test prod -> summary. Every step is a real `mlops` command, so
what the demo shows is what a user would type. The endpoints it started are
stopped at the end unless --keep-endpoints is given (or MLOPS_DEMO_KEEP_ENDPOINTS=1, as
`make demo KEEP=1` sets it), so that the printed curl and boto3 examples can be tried.

With --feature-store (`make demo FEATURE_STORE=1`) the data goes through the feature
store first: two batches of records (a later version of some of them), snapshots as of
a time between the batches and after them, and the pipeline trains on a snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlops.cli import run
from mlops.core.config import CONFIG_ENV, Config, load_config
from mlops.core.datagen import feature_store_batches
from mlops.core.errors import MlopsError
from mlops.core.paths import mlops_home


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def step(argv: list[str], findings_ok: bool = False) -> int:
    """Run one `mlops` command; stop the demo if it fails. With `findings_ok`, exit 1 is a
    finding to show (a monitor violation), not a failure of the demo."""
    print("$ mlops " + " ".join(argv), flush=True)
    code = run(argv)
    if code == 1 and findings_ok:
        print("(exit 1: the report above names the violations; the demo goes on)", flush=True)
    elif code != 0:
        sys.exit(f"demo stopped: `mlops {' '.join(argv)}` exited {code}")
    return code


def has_command(*path: str) -> bool:
    """Whether `mlops <path...>` exists in this checkout (subcommands land over time)."""
    from mlops.cli import build_parser

    parser = build_parser()
    for name in path:
        choices = next((a.choices for a in parser._subparsers._group_actions if a.choices), {})
        if name not in choices:
            return False
        parser = choices[name]
    return True


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_stage_ports(home: Path) -> Path | None:
    """If a stage's port is taken by something other than this home's own endpoint, serve
    the demo from a temporary copy of the stage configs with free ports instead."""
    from mlops.core.stages import STAGES, deploy_dir, load_stage_config
    from mlops.local.endpoints import is_live, read_endpoint

    busy = []
    for stage in STAGES:
        port = load_stage_config(stage).local.port
        ours = read_endpoint(home, stage)
        if not port_is_free(port) and not (ours and ours.port == port and is_live(ours)):
            busy.append(stage)
    if not busy:
        return None
    copy = Path(tempfile.mkdtemp(prefix="mlops-demo-deploy-"))
    for stage in STAGES:
        source = deploy_dir() / f"{stage}-config.json"
        data = json.loads(source.read_text())
        if stage in busy:
            data["local"]["port"] = free_port()
            print(
                f"note: port {load_stage_config(stage).local.port} of {stage} is in use; "
                f"the demo uses {data['local']['port']} (a copy of the config in {copy})"
            )
        (copy / source.name).write_text(json.dumps(data, indent=2))
    os.environ["MLOPS_DEPLOY_DIR"] = str(copy)
    return copy


def newest_version(cfg: Config, home: Path) -> int:
    from mlops.local.registry import LocalRegistry

    versions = LocalRegistry(home, cfg.model_package_group).list()
    if not versions:
        sys.exit("demo stopped: the pipeline registered no model version")
    return versions[-1].version


KEEP_ENV = "MLOPS_DEMO_KEEP_ENDPOINTS"  # set to 1: the demo leaves its endpoints running


def print_summary(cfg: Config, home: Path, keep: bool = True) -> None:
    from mlops.core.smoke import rows_for_version
    from mlops.local.endpoints import read_endpoint
    from mlops.local.registry import LocalRegistry

    registry = LocalRegistry(home, cfg.model_package_group)
    banner("summary")
    prod = None
    for stage in ("staging", "prod"):
        endpoint = read_endpoint(home, stage)
        if endpoint is None:
            print(f"{stage:<8} not deployed")
            continue
        version = registry.describe(endpoint.version)
        metrics = "  ".join(f"{k}={v:.4g}" for k, v in version.metrics.items())
        print(f"{stage:<8} version {version.version} ({version.approval_status})  {endpoint.url}")
        print(f"         endpoint name {endpoint.endpoint_name}; test metrics: {metrics}")
        prod = endpoint if stage == "prod" else prod
    if prod is None:
        return
    rows = rows_for_version(registry.describe(prod.version), home, 1)
    row, target = rows.lines[0], rows.targets[0]
    shown = f"{target:,.6g}" if isinstance(target, int | float) else target  # or a label
    print(f"\nTry it (a held-out row whose true {cfg.data.target} is {shown}):")
    if not keep:
        print(
            "  (the demo stops its endpoints now: `make demo KEEP=1`, --keep-endpoints or "
            f"{KEEP_ENV}=1 keeps them; `mlops endpoint stop --stage S` stops them later)"
        )
    print(f"  curl -s -X POST {prod.url}/invocations -H 'Content-Type: text/csv' --data '{row}'")
    print("\n  # any SageMaker Runtime client works, unmodified:")
    print("  python - <<'EOF'")
    print("  import boto3")
    print(
        f'  rt = boto3.client("sagemaker-runtime", endpoint_url="{prod.url}", '
        'region_name="us-east-1",'
    )
    print('                    aws_access_key_id="local", aws_secret_access_key="local")')
    print(
        f'  r = rt.invoke_endpoint(EndpointName="{prod.endpoint_name}", '
        f'ContentType="text/csv", Body="{row}")'
    )
    print('  print(r["Body"].read().decode())')
    print("  EOF")


def held_out_files(cfg: Config, home: Path, rows: int) -> tuple[Path, Path, list[str], list]:
    """Prod's held-out rows as a headed CSV (what a batch job gets), and the first `rows` as
    request lines with their true targets (the demo's production traffic and its labels)."""
    import pandas as pd

    from mlops.core.run_layout import local_held_out, read_held_out
    from mlops.core.smoke import rows_for_version
    from mlops.local.endpoints import read_endpoint
    from mlops.local.registry import LocalRegistry

    version = LocalRegistry(home, cfg.model_package_group).describe(
        read_endpoint(home, "prod").version
    )
    frame = read_held_out(local_held_out(version, home))
    folder = home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    held_out = folder / "held_out.csv"
    frame.drop(columns=[cfg.data.target]).to_csv(held_out, index=False)
    traffic = rows_for_version(version, home, rows)
    labels = folder / "labels.csv"
    pd.DataFrame(
        {
            "inference_id": [f"demo-{i}" for i in range(len(traffic.lines))],
            cfg.data.target: traffic.targets,
        }
    ).to_csv(labels, index=False)
    return held_out, labels, traffic.lines, list(frame.index)


def send_traffic(home: Path, rows: list[str]) -> None:
    """Requests to prod through a sagemaker-runtime client, one row each, with inference ids."""
    from mlops.core.smoke import runtime_client
    from mlops.local.capture import captured_lines, wait_for_capture
    from mlops.local.endpoints import read_endpoint

    endpoint = read_endpoint(home, "prod")
    before = captured_lines(home, endpoint.endpoint_name)
    client = runtime_client(endpoint.url)
    for i, row in enumerate(rows):
        client.invoke_endpoint(
            EndpointName=endpoint.endpoint_name,
            ContentType="text/csv",
            Body=row,
            InferenceId=f"demo-{i}",
        )
    captured = wait_for_capture(home, endpoint.endpoint_name, before + len(rows)) - before
    print(f"sent {len(rows)} requests to prod ({endpoint.url}); it captured {captured}")


def ingest_two_batches(cfg: Config, data: Path, home: Path, now: datetime) -> tuple[str, str]:
    """The data as records two days ago, a quarter of them with earlier values, and those
    records' current values a day ago, ingested (the snapshot now is the data itself);
    returns (a time between the batches, an id that has two versions)."""
    import pandas as pd

    from mlops.core.feature_store import format_time

    fs = cfg.feature_store
    times = (now - timedelta(days=2), now - timedelta(days=1))
    first, second = feature_store_batches(
        pd.read_csv(data), fs.record_id, fs.event_time, tuple(format_time(t) for t in times)
    )
    folder = home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    for number, batch in enumerate((first, second), start=1):
        path = folder / f"records-{number}.csv"
        batch.to_csv(path, index=False)
        print(f"batch {number}: {len(batch)} records at {batch[fs.event_time].iloc[0]} ({path})")
        step(["features", "ingest", "--data", str(path)])
    return format_time(now - timedelta(hours=36)), str(second[fs.record_id].iloc[0])


def show_snapshots(cfg: Config, home: Path, between: str, record: str) -> None:
    """Snapshots as of `between` and now: the same ids, `record` at its first, then second
    version."""
    import pandas as pd

    rid = cfg.feature_store.record_id
    rows = {}
    for label, as_of in (("between the batches", between), ("after both", None)):
        out = home / "demo" / f"snapshot-{'between' if as_of else 'now'}.csv"
        step(["features", "snapshot", "--out", str(out), *(["--as-of", as_of] if as_of else [])])
        snap = pd.read_csv(out, dtype={rid: str})
        rows[label] = snap.loc[snap[rid] == record].iloc[0]
        print(f"  {label}: {len(snap)} records")
    print(f"record {record} in each snapshot (point in time: its version then):")
    print(pd.DataFrame(rows).to_string())
    step(["features", "get", record])


def print_snapshot_lineage(cfg: Config, home: Path, version: int) -> None:
    from mlops.local.registry import LocalRegistry

    lineage = LocalRegistry(home, cfg.model_package_group).describe(version).lineage
    snap = lineage.get("feature_snapshot") or {}
    print(
        f"version {version} lineage: feature snapshot as of {snap.get('as_of')}, "
        f"{snap.get('rows')} rows, sha256 {snap.get('sha256')}"
    )


def feature_store_story(cfg: Config, data: Path, home: Path) -> None:
    """Banner 3 with --feature-store: the data through the store, then the pipeline on it."""
    if not cfg.feature_store.record_id or not cfg.feature_store.event_time:
        sys.exit(
            "demo stopped: --feature-store needs feature_store.record_id and "
            "feature_store.event_time in the config"
        )
    banner("3. the feature store: two batches of records, snapshots as of a time")
    now = datetime.now(UTC).replace(microsecond=0)
    between, record = ingest_two_batches(cfg, data, home, now)
    show_snapshots(cfg, home, between, record)
    banner("3b. the pipeline: validate ... register, trained on a snapshot of the store")
    step(["pipeline", "run", "--from-feature-store"])


def stop_endpoints(stages: list[str]) -> None:
    banner("stopping the endpoints the demo started (--keep-endpoints keeps them)")
    for stage in stages:
        step(["endpoint", "stop", "--stage", stage])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        help="CSV to train on, only ever read (default: data.sample in the config)",
    )
    p.add_argument("--config", type=Path, help="config file (default: model_build/config.yaml)")
    p.add_argument(
        "--keep-endpoints",
        action="store_true",
        default=os.environ.get(KEEP_ENV, "") not in ("", "0"),
        help=f"leave staging and prod running at the end (also {KEEP_ENV}=1)",
    )
    p.add_argument(
        "--traffic-rows", type=int, default=500, help="requests sent to prod for the monitor"
    )
    p.add_argument(
        "--feature-store",
        action="store_true",
        help="train from the feature store: ingest the data as two batches of records, "
        "show snapshots as of a time, run the pipeline on a snapshot (needs "
        "feature_store.record_id and event_time in the config)",
    )
    args = p.parse_args(argv)
    if args.config:
        os.environ[CONFIG_ENV] = str(args.config.resolve())  # every step reads the same one
    try:
        cfg = load_config()
    except MlopsError as exc:
        sys.exit(f"demo stopped: {exc}")
    home = mlops_home()
    data = args.data or cfg.sample_file
    if data is None or not data.is_file():
        sys.exit(f"demo stopped: no data file {data} (pass --data FILE or set data.sample)")
    print(f"state directory: {home}  (set MLOPS_HOME to use another)")

    banner("1. a data scientist brings data")
    print(f"data: {data} ({sum(1 for _ in data.open()) - 1} rows, read only)")
    banner("2. data checks: the Great Expectations suite")
    if has_command("data", "validate"):
        step(["data", "validate", str(data), "--report-dir", str(home / "reports")])
    else:
        print("(`mlops data validate` is not in this checkout yet; the pipeline validates too)")
    if args.feature_store:
        feature_store_story(cfg, data, home)
    else:
        banner("3. the pipeline: validate, preprocess, train, evaluate, gate, register")
        step(["pipeline", "run", "--data", str(data)])
    step(["models", "list"])
    version = newest_version(cfg, home)
    if args.feature_store:
        print_snapshot_lineage(cfg, home, version)
    banner("4. approval: a human approver reviews metrics and lineage, then approves")
    print("(in a real project a person runs this; CI never approves its own model)")
    step(["models", "approve", str(version), "--note", "approved in make demo"])

    temporary_configs = ensure_stage_ports(home)
    started: list[str] = []
    try:
        banner("5. deploy to staging: candidate on a free port, smoke test, then switch")
        started.append("staging")
        step(["deploy", "--stage", "staging"])
        banner("6. smoke test staging: held-out rows through a sagemaker-runtime client")
        step(["endpoint", "test", "--stage", "staging"])
        banner("7. promote: staging's version to prod (Approved, live, passing)")
        started.append("prod")
        step(["promote"])
        banner("8. smoke test prod")
        step(["endpoint", "test", "--stage", "prod"])
        step(["endpoint", "status"])
        if has_command("batch", "predict") and has_command("monitor"):
            held_out, labels, traffic, _ = held_out_files(cfg, home, args.traffic_rows)
            banner("9. batch scoring: prod's version scores the held-out file")
            out = home / "demo" / "held_out_scores.csv"
            step(
                ["batch", "predict", "--data", str(held_out), "--out", str(out), "--stage", "prod"]
            )
            banner("10. production traffic, captured, and the monitor on it")
            # Only the traffic: the smoke tests sent the same few rows again and again, which
            # a small fork's monitor would read as drift.
            since = datetime.now(UTC).isoformat()
            send_traffic(home, traffic)
            # A few hundred rows of a small fork's data can drift by chance: shown, not fatal.
            monitor = ["monitor", "--stage", "prod", "--labels", str(labels), "--since", since]
            step(monitor, findings_ok=True)
        print_summary(cfg, home, args.keep_endpoints)
    finally:
        if not args.keep_endpoints and started:
            stop_endpoints(started)
        if temporary_configs and not args.keep_endpoints:
            shutil.rmtree(temporary_configs, ignore_errors=True)
    print("\ndemo finished: data -> pipeline -> registry -> staging -> prod")
    print_approver_view(cfg, home)
    return 0


def print_approver_view(cfg: Config, home: Path) -> None:
    """Where an approver looks: the cards, and the status page that lists them."""
    from mlops.local.cards import card_folder

    cards = card_folder(home, cfg.model_package_group, 1).parent
    print(f"model cards:  {cards}/v<N>/card.html (and card.md)  -- `mlops models card N --open`")
    print("status page:  mlops ui   (versions, stages, deploys, monitor, cards on 127.0.0.1)")


if __name__ == "__main__":
    sys.exit(main())
