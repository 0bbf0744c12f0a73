"""Batch scoring: what a job is, what it reports, and what each backend implements.

`mlops batch predict` scores a whole file with one model version: the local
backend (`mlops.local.batch`) streams it through the serving code the version's
artifact carries, on this machine's cores; the SageMaker backend (`mlops.sagemaker.batch`) runs a
batch transform job from the version's model package. Both answer a `BatchResult`.
Pure rules live here: file formats, the reject budget, the summary line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from mlops.core.errors import MlopsError, UsageError
from mlops.core.interfaces import Progress
from mlops.core.registry import APPROVED, ModelVersion

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
PREDICTION_COLUMN = "prediction"
LABEL_COLUMN = "label"  # a classifier's answer at its threshold, beside the probability


@dataclass(frozen=True)
class BatchJob:
    data: str  # input file (local path, or s3:// for SageMaker)
    out: str  # output file (local path, or s3:// prefix for SageMaker)
    version: ModelVersion
    id_column: str | None = None
    chunk_rows: int = 50_000
    max_reject_pct: float = 1.0
    workers: int = 1


@dataclass(frozen=True)
class BatchResult:
    version: int
    rows: int  # data rows read
    scored: int
    rejected: int
    seconds: float
    out: str
    rejects: str = ""  # the rejects file, when rows were rejected
    job: str = ""  # the SageMaker batch transform job, which reports no row counts

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def reject_pct(self) -> float:
        return 100.0 * self.rejected / self.rows if self.rows else 0.0

    def summary(self) -> str:
        if self.job:
            return (
                f"batch transform {self.job} (model version {self.version}) completed in "
                f"{self.seconds:.0f} s -> {self.out}"
            )
        rate = self.scored / self.seconds if self.seconds > 0 else float("inf")
        line = (
            f"scored {self.scored:,} of {self.rows:,} rows with model version {self.version} "
            f"in {self.seconds:.1f} s ({rate:,.0f} rows/s) -> {self.out}"
        )
        if self.rejected:
            line += f"; {self.rejected:,} rejected ({self.reject_pct:.2f}%) -> {self.rejects}"
        return line


class BatchScorer(Protocol):
    """Scores a file with a model version; raises MlopsError and leaves no output on failure."""

    def predict(self, job: BatchJob, progress: Progress) -> BatchResult: ...


def file_format(path: str | Path, role: str) -> str:
    """ "csv" or "parquet" from a file name; UsageError for anything else."""
    suffix = Path(str(path)).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(
            f"{role} file {path}: unknown format {suffix or '(no extension)'!r}; "
            f"use {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def rejects_path(out: str | Path) -> Path:
    """Where rejected rows go: beside the output, `<name>.rejects.csv`."""
    out = Path(out)
    return out.with_name(f"{out.stem}.rejects.csv")


def check_batch_version(version: ModelVersion, require_approved: bool) -> None:
    if require_approved and version.approval_status != APPROVED:
        raise MlopsError(
            f"model version {version.version} is {version.approval_status}, not {APPROVED}: "
            "batch.require_approved in the config refuses it (approve it first)"
        )


def check_reject_budget(rows: int, rejected: int, max_reject_pct: float, first: str = "") -> None:
    """MlopsError when the rejected share is over the budget (an empty input is an error too)."""
    if rows == 0:
        raise MlopsError("the input has no data rows")
    share = 100.0 * rejected / rows
    if share > max_reject_pct:
        raise MlopsError(
            f"{rejected:,} of {rows:,} rows ({share:.2f}%) could not be scored, over "
            f"batch.max_reject_pct {max_reject_pct:g}%: no output written"
            + (f" (first: {first})" if first else "")
        )


def missing_columns(columns: list[str], features: list[str]) -> list[str]:
    present = set(columns)
    return [f for f in features if f not in present]
