"""The GitHub workflows: linted, least privilege, pinned, guarded, and thin.

Thin means every `run:` step is one `make` or `mlops` call, so what CI does is
what `make test` covers here; the `mlops` calls are parsed by the real CLI parser
and the `make` targets must exist, so a renamed flag breaks this test, not CI.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from mlops.cli import build_parser

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOWS = {p.stem: p for p in sorted(WORKFLOWS_DIR.glob("*.yml"))}
BIN = Path(sys.executable).parent
AWS_ACTION = "aws-actions/configure-aws-credentials"
COMMENT_ACTION = "marocchino/sticky-pull-request-comment"
ISSUE_ACTION = "actions/github-script"  # the monitor's issue per stage
PR_ACTION = "peter-evans/create-pull-request"  # the template update's pull request
MLOPS_COMMANDS = {"mlops", ".venv/bin/mlops", "base/.venv/bin/mlops"}
PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")
SAMPLE = "3"  # stands in for every ${{ }} value: a model version, a path, a name


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def all_jobs():
    for name, path in WORKFLOWS.items():
        for job_id, job in load(path)["jobs"].items():
            yield name, job_id, job


def uses(job: dict) -> list[str]:
    return [s["uses"].split("@")[0] for s in job.get("steps", []) if "uses" in s]


def run_steps():
    for name, job_id, job in all_jobs():
        for step in job.get("steps", []):
            if "run" in step:
                yield name, job_id, job, step


def one_line(script: str) -> str:
    return script.replace("\\\n", " ").strip()


def test_the_workflows_exist():
    assert set(WORKFLOWS) == {"pr", "build", "deploy", "batch", "monitor", "template-update"}


def test_actionlint_reports_nothing():
    proc = subprocess.run(
        [BIN / "actionlint", "-no-color", *WORKFLOWS.values()],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def zizmor(*inputs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            BIN / "zizmor",
            "--offline",
            "--persona",
            "pedantic",
            "--no-progress",
            "--color",
            "never",
            *inputs,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_zizmor_reports_nothing_even_pedantic():
    proc = zizmor(REPO_ROOT / ".github")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout


def test_zizmor_would_catch_the_mistakes_we_guard_against(tmp_path):
    """A control: the same zizmor call flags injection, unpinned actions and broad rights."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request_target\npermissions: write-all\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    out = zizmor(bad).stdout
    for audit in (
        "template-injection",
        "unpinned-uses",
        "excessive-permissions",
        "dangerous-triggers",
    ):
        assert audit in out


def test_no_dangerous_triggers_no_secrets_no_expressions_in_run():
    for name, path in WORKFLOWS.items():
        text = path.read_text()
        triggers = load(path)["on"]
        assert "pull_request_target" not in triggers and "workflow_run" not in triggers, name
        assert "secrets." not in text, f"{name}: AWS goes through OIDC, nothing else is secret"
    for name, job_id, _, step in run_steps():
        assert "${{" not in step["run"], (
            f"{name}/{job_id}: pass values through env:, not ${{{{ }}}}"
        )


def test_permissions_empty_at_top_and_minimal_per_job():
    for name, path in WORKFLOWS.items():
        assert load(path)["permissions"] == {}, name
    for name, job_id, job in all_jobs():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name}/{job_id} declares its own permissions"
        if COMMENT_ACTION in uses(job):
            expected = {"pull-requests": "write"}  # and nothing else: it runs no PR code
        elif PR_ACTION in uses(job):
            expected = {"contents": "write", "pull-requests": "write"}  # no cloud: files only
            assert AWS_ACTION not in uses(job), f"{name}/{job_id}"
        else:
            expected = {"contents": "read"}
            if AWS_ACTION in uses(job):
                expected["id-token"] = "write"
            if ISSUE_ACTION in uses(job):
                expected["issues"] = "write"
        assert perms == expected, f"{name}/{job_id}"


def test_every_action_is_pinned_to_a_full_sha_with_its_version():
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS.values()]:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(-\s+)?uses:", line):
                match = PIN.match(line)
                assert match, f"{path.name}: not pinned to a SHA with a version comment: {line}"
                pins.setdefault(match.group(1), set()).add(match.group(2))
    assert {action: len(shas) for action, shas in pins.items()} == dict.fromkeys(pins, 1)
    assert AWS_ACTION in pins and COMMENT_ACTION in pins


def test_checkouts_keep_no_credentials():
    for name, job_id, job in all_jobs():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{name}/{job_id}"


def test_aws_only_through_oidc_with_role_from_variables():
    for name, job_id, job in all_jobs():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith(AWS_ACTION):
                role = step["with"]["role-to-assume"]
                pattern = r"\$\{\{ vars\.AWS_[A-Z_]*ROLE_ARN \}\}"
                assert re.fullmatch(pattern, role), f"{name}/{job_id}: {role}"
                assert set(step["with"]) == {"role-to-assume", "aws-region"}


def conditions(expression: str) -> set[str]:
    """The clauses of an `a && b && c` condition (refusing `||`, which could bypass one)."""
    assert "||" not in expression
    return {" ".join(part.split()) for part in expression.split("&&")}


def test_sagemaker_pr_job_needs_aws_this_repository_and_the_label():
    jobs = load(WORKFLOWS["pr"])["jobs"]
    aws_jobs = [job_id for job_id, job in jobs.items() if AWS_ACTION in uses(job)]
    assert aws_jobs == ["sagemaker"]
    assert conditions(jobs["sagemaker"]["if"]) == {
        "vars.AWS_PR_ROLE_ARN != ''",
        "github.event.pull_request.head.repo.full_name == github.repository",
        "contains(github.event.pull_request.labels.*.name, 'train-on-sagemaker')",
    }
    assert "labeled" in load(WORKFLOWS["pr"])["on"]["pull_request"]["types"]


def test_comment_job_runs_no_pr_code_and_gets_the_report_as_an_artifact():
    jobs = load(WORKFLOWS["pr"])["jobs"]
    comment = jobs["comment"]
    assert uses(comment) == ["actions/download-artifact", COMMENT_ACTION]
    assert comment["needs"] == "pipeline"
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    upload = next(s for s in jobs["pipeline"]["steps"] if "upload-artifact" in s.get("uses", ""))
    download, post = comment["steps"]
    assert download["with"]["name"] == upload["with"]["name"]
    assert post["with"]["path"] == f"{download['with']['path']}/pr-report.md"
    assert post["with"]["header"]  # one comment, found again and updated on every push
    report = next(s for s in jobs["pipeline"]["steps"] if " report pr " in s.get("run", ""))
    args = shlex.split(report["run"])
    assert "reports/pr-report.md" in args and "$GITHUB_STEP_SUMMARY" in args
    assert upload["with"]["path"].rstrip("/") == "reports"
    checks = [
        shlex.split(s["run"])
        for s in jobs["pipeline"]["steps"]
        if re.search(r" data (validate|drift) ", s.get("run", ""))
    ]
    written = {argv[argv.index("--report-dir") + 1] for argv in checks}  # one spelling for all
    assert len(checks) == 2 and written == {args[args.index("--report-dir") + 1]} == {"reports"}


def test_pr_pipeline_job_runs_the_offline_path():
    commands = [
        one_line(s["run"]) for s in load(WORKFLOWS["pr"])["jobs"]["pipeline"]["steps"] if "run" in s
    ]
    joined = "\n".join(commands)
    for needed in (
        " data path ",
        " data validate ",
        " data drift ",
        " pipeline run --data ",
        " report pr ",
    ):
        assert needed in joined
    assert "--backend sagemaker" not in joined


def stage_jobs(workflow: str) -> dict[str, dict]:
    """stage -> the job that deploys it."""
    found = {}
    for job_id, job in load(WORKFLOWS[workflow])["jobs"].items():
        runs = " ".join(s.get("run", "") for s in job.get("steps", []))
        for stage in ("staging", "prod"):
            if f"--stage {stage}" in runs and ("deploy" in runs or "promote" in runs):
                assert stage not in found, f"{stage} deployed by two jobs"
                found[stage] = {"id": job_id, **job}
    return found


def test_prod_waits_for_staging_and_a_reviewer():
    stages = stage_jobs("deploy")
    staging, prod = stages["staging"], stages["prod"]
    assert prod["needs"] == staging["id"]
    assert prod["environment"] == "production"
    # staging has its own environment (its OIDC subject; deployment branch: main only)
    assert staging["environment"] == "staging"
    runs = [one_line(s["run"]) for s in prod["steps"] if "run" in s]
    assert any("promote" in r for r in runs)
    # prod promotes the version this run staged (what the reviewer saw), not whatever staging
    # serves when the approval comes
    (promote,) = [s for s in prod["steps"] if "promote" in s.get("run", "")]
    assert promote["env"] == {"STAGING_VERSION": "${{ needs.staging.outputs.version }}"}
    assert '--version "$STAGING_VERSION"' in promote["run"]
    recorded = staging["outputs"]["version"].removeprefix("${{ steps.").split(".")[0]
    (step,) = [s for s in staging["steps"] if s.get("id") == recorded]
    assert "endpoint status --stage staging" in step["run"] and "--env" in step["run"]
    assert any(r.endswith("endpoint test --stage prod --backend sagemaker") for r in runs)
    staging_runs = [one_line(s["run"]) for s in staging["steps"] if "run" in s]
    assert staging_runs[-1].endswith("endpoint test --stage staging --backend sagemaker")


def test_failed_prod_smoke_test_rolls_back_to_the_version_recorded_before():
    steps = load(WORKFLOWS["deploy"])["jobs"]["production"]["steps"]
    ids = [s.get("id") for s in steps]
    before, smoke = ids.index("before"), ids.index("smoke")
    deploys = [
        i
        for i, s in enumerate(steps)
        if "promote" in s.get("run", "") or "deploy --stage prod --backend" in s.get("run", "")
    ]
    assert before < min(deploys) and max(deploys) < smoke
    assert '>> "$GITHUB_OUTPUT"' in steps[before]["run"]
    rollback = steps[-1]
    assert conditions(rollback["if"]) == {
        "failure()",
        "steps.smoke.outcome == 'failure'",
        "steps.before.outputs.version != ''",
    }
    assert rollback["env"] == {"PREVIOUS_VERSION": "${{ steps.before.outputs.version }}"}
    assert shlex.split(rollback["run"])[1:] == [
        "deploy",
        "--stage",
        "prod",
        "--version",
        "$PREVIOUS_VERSION",
        "--backend",
        "sagemaker",
    ]


def test_one_deployment_per_stage_at_a_time():
    groups = {}
    for stage, job in stage_jobs("deploy").items():
        concurrency = job["concurrency"]
        assert concurrency["cancel-in-progress"] is False  # never cut a deployment in half
        assert stage in concurrency["group"]
        groups[stage] = concurrency["group"]
    assert len(set(groups.values())) == 2
    # No workflow-wide group in deploy.yml: GitHub keeps one pending run per group, so a
    # run waiting for the prod reviewer would make newer runs replace each other.
    assert "concurrency" not in load(WORKFLOWS["deploy"])
    assert load(WORKFLOWS["build"])["concurrency"]["cancel-in-progress"] is False
    assert load(WORKFLOWS["pr"])["concurrency"]["cancel-in-progress"] is True


def role_variable(job: dict) -> str:
    step = next(s for s in job["steps"] if s.get("uses", "").startswith(AWS_ACTION))
    return step["with"]["role-to-assume"].removeprefix("${{ vars.").removesuffix(" }}")


def test_aws_jobs_skip_cleanly_without_aws():
    """Without the role variables (a fresh fork) AWS jobs are skipped, not failed."""
    for name, path in WORKFLOWS.items():
        jobs = load(path)["jobs"]
        for job_id, job in jobs.items():
            if AWS_ACTION not in uses(job):
                continue
            guarded = job if "if" in job else jobs[job["needs"]]
            guard = f"vars.{role_variable(guarded)} != ''"
            assert guard in conditions(guarded["if"]), f"{name}/{job_id}"


def test_deploys_resolve_the_version_when_they_run_not_from_the_event():
    """A queued run may replace a pending one; it must deploy what is approved by then."""
    text = WORKFLOWS["deploy"].read_text()
    assert "client_payload" not in text


def command_of(script: str) -> list[str]:
    """The one command a run step holds; fails on shell sequences, pipes or substitutions."""
    line = one_line(script)
    assert "\n" not in line, f"one command per step: {script!r}"
    assert "$(" not in line and "`" not in line, line
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    operators = [t for t in lexer if t and set(t) <= set("();<>|&")]
    assert operators in ([], [">>"]), f"{operators} in {line!r}"
    return shlex.split(line)


def test_every_run_step_is_one_make_or_mlops_call():
    seen = set()
    for name, job_id, _, step in run_steps():
        argv = command_of(step["run"])
        redirect = [i for i, a in enumerate(argv) if a.startswith(">")]
        if redirect:  # only: append the command's KEY=VALUE lines to the step's outputs
            assert argv[redirect[0] :] == [">>", "$GITHUB_OUTPUT"], f"{name}/{job_id}"
        assert argv[0] == "make" or argv[0] in MLOPS_COMMANDS, f"{name}/{job_id}: {argv[0]}"
        seen.add(argv[0])
    assert "make" in seen and ".venv/bin/mlops" in seen


def expanded_argv(script: str, env: dict, tmp_path: Path) -> list[str]:
    """argv as bash would pass it, with the step's env; nothing is run but a recorder."""
    recorder = tmp_path / "recorder"
    recorder.write_text('#!/bin/sh\nprintf "%s\\0" "$@" > "$ARGV_FILE"\n')
    recorder.chmod(0o755)
    argv_file = tmp_path / "argv"
    first = command_of(script)[0]
    body = (
        one_line(script)
        .replace(first, '"$RECORDER"', 1)
        .replace('>> "$GITHUB_OUTPUT"', ">/dev/null")
    )
    subprocess.run(
        ["bash", "-c", body],
        check=True,
        env={
            "PATH": os.environ["PATH"],
            "RECORDER": str(recorder),
            "ARGV_FILE": str(argv_file),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            **env,
        },
    )
    return argv_file.read_text().split("\0")[:-1]


def step_env(workflow: dict, job: dict, step: dict) -> dict:
    env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
    return {k: SAMPLE if "${{" in str(v) else str(v) for k, v in env.items()}


def test_mlops_calls_parse_with_the_real_cli(tmp_path, capsys):
    parser = build_parser()
    checked, failures = 0, []
    for name, path in WORKFLOWS.items():
        workflow = load(path)
        for job_id, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                if "run" not in step or command_of(step["run"])[0] not in MLOPS_COMMANDS:
                    continue
                argv = expanded_argv(step["run"], step_env(workflow, job, step), tmp_path)
                checked += 1
                try:
                    parser.parse_args(argv)
                except SystemExit:
                    error = capsys.readouterr().err.strip().splitlines()[-1]
                    failures.append(f"{name}/{job_id}: `mlops {' '.join(argv)}`: {error}")
    assert not failures, "workflow calls the CLI does not accept:\n" + "\n".join(failures)
    assert checked >= 15


def test_make_targets_exist():
    targets = set()
    for _, _, _, step in run_steps():
        argv = command_of(step["run"])
        if argv[0] == "make":
            args = argv[1:]
            if args[:1] == ["-C"]:
                args = args[2:]  # the base branch's checkout: the same Makefile, one commit older
            targets.update(args)
    assert {"lint", "test", ".venv/.dev", ".venv/.core"} <= targets
    proc = subprocess.run(
        ["make", "-n", "-C", str(REPO_ROOT), *sorted(targets)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
