"""Batch scoring on this machine: a file, streamed in chunks through the version's own handler.

The input is read `batch.chunk_rows` rows at a time (CSV or Parquet), so memory stays
bounded whatever the file size. Each chunk is scored in a worker process (one per core,
one XGBoost thread each, as the endpoint's workers are) by the `score_frame` of the
serving code the version's artifact carries (`mlops.local.model_host.load_model`): the
code its endpoint runs, reading raw values as a request's. A row that cannot be scored
(text in a number feature, an infinite value) goes to `<out>.rejects.csv` with the
reason; an empty value is a missing one, which the model scores. The job fails only when
the rejected share is over `batch.max_reject_pct`. Output and rejects are written to
temporary files and renamed at the end: they appear whole or not at all. Chunks come
back in input order.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.core.batch import (
    LABEL_COLUMN,
    PREDICTION_COLUMN,
    BatchJob,
    BatchResult,
    check_reject_budget,
    file_format,
    missing_columns,
    rejects_path,
)
from mlops.core.errors import MlopsError, UsageError
from mlops.core.interfaces import Progress
from mlops.local.artifacts import unpack_version
from mlops.local.lifeline import die_with
from mlops.local.model_host import load_model
from mlops.local.server_process import is_running
from stepkit.csv_input import duplicated_names, not_utf8

ROW_COLUMN = "row"  # 1-based data row number in the input, in the rejects file
REASON_COLUMN = "reason"
PROGRESS_EVERY_S = 0.5


@dataclass
class ChunkScores:
    first_row: int
    scored: pd.DataFrame  # [id], prediction, [label]
    rejected: pd.DataFrame  # row, [id], reason, the features as read


class ChunkScorer:
    """The version's own handler and model, loaded once; scores chunks of raw rows through
    the handler's `score_frame` (the serving path's reader: text categories, missing values)."""

    def __init__(self, model_dir: str, id_column: str | None):
        self.handlers, self.model = load_model(model_dir)
        self.features = list(self.model.features)
        self.id_column = id_column

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Predictions (NaN where refused) and per-row reasons ("" when scored)."""
        if len(frame) == 0:
            return np.empty(0), np.empty(0, dtype=object)
        predictions, reasons = self.handlers.score_frame(self.model, frame)
        return np.asarray(predictions, dtype=float), np.asarray(reasons, dtype=object)

    def score(self, frame: pd.DataFrame, first_row: int) -> ChunkScores:
        predictions, reasons = self.predict(frame)
        ok = reasons == ""
        scored = pd.DataFrame({PREDICTION_COLUMN: predictions[ok]})
        labels = getattr(self.model, "class_labels", None)
        if labels:  # a classifier: the label its threshold gives, as the endpoint answers it
            positive = predictions[ok] >= self.model.threshold
            scored[LABEL_COLUMN] = np.where(positive, labels[1], labels[0])
        if self.id_column:
            scored.insert(0, self.id_column, frame[self.id_column].to_numpy()[ok])
        bad = ~ok
        raw = frame.loc[bad, [*([self.id_column] if self.id_column else []), *self.features]]
        rejected = raw.astype(str).where(raw.notna(), "")
        rejected.insert(0, REASON_COLUMN, reasons[bad])
        rejected.insert(0, ROW_COLUMN, first_row + np.flatnonzero(bad) + 1)
        return ChunkScores(first_row, scored.reset_index(drop=True), rejected)


_WORKER: ChunkScorer | None = None


def _init_worker(model_dir: str, id_column: str | None, owner_pid: int) -> None:
    global _WORKER
    die_with(owner_pid)  # a killed `batch predict` leaves no worker behind
    _WORKER = ChunkScorer(model_dir, id_column)


def _score_in_worker(frame: pd.DataFrame, first_row: int) -> ChunkScores:
    return _WORKER.score(frame, first_row)


def read_columns(path: Path, kind: str) -> list[str]:
    """The column names of the input, as its header has them, without reading its rows; a
    name given twice is refused (pandas would read `a, a` as `a, a.1` and score the first)."""
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            names = list(pq.ParquetFile(path).schema_arrow.names)
        else:  # the header as a row: its names unrenamed
            head = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
            names = list(head.iloc[0]) if len(head) else []
    except FileNotFoundError:
        raise UsageError(f"input file not found: {path}") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"input file {path} is empty") from None
    except UnicodeDecodeError:
        raise UsageError(not_utf8(path)) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path} as {kind}: {exc}") from None
    duplicated = duplicated_names(names)  # the check data validate makes
    if duplicated:
        raise UsageError(f"{path}: duplicated header column(s) {duplicated}")
    return names


def read_chunks(
    path: Path, kind: str, columns: list[str], rows: int, id_column: str | None = None
) -> Iterator[pd.DataFrame]:
    """The input `rows` rows at a time, only the named columns."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            yield batch.to_pandas()
        return
    # Every value is read as text, as a request carries it: the handler types it (a bad
    # cell costs one row, an empty one is a missing value), and no column changes type
    # from one chunk to the next.
    reader = pd.read_csv(path, usecols=columns, chunksize=rows, dtype=str, keep_default_na=False)
    try:
        yield from reader
    except UnicodeDecodeError:
        raise UsageError(not_utf8(path)) from None
    except ValueError as exc:
        raise UsageError(f"cannot read {path} as CSV: {exc}") from None


class OutputWriter:
    """Scored rows and rejects into temporary files, renamed into place by `commit`."""

    def __init__(self, out: Path, kind: str):
        self.out, self.kind = out, kind
        self.rejects = rejects_path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        self.tmp_rejects = self.rejects.with_name(f".{self.rejects.name}.{os.getpid()}.tmp")
        for leftover in (out, self.rejects):
            collect_dead_temps(leftover.parent, f".{leftover.name}.")
        self.writer = None
        self.schema = None
        self.rejected = 0
        self.first_reject = ""

    def write(self, chunk: ChunkScores) -> None:
        import pyarrow as pa

        table = pa.Table.from_pandas(chunk.scored, preserve_index=False)
        if self.writer is None:
            self.schema = table.schema
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                self.writer = pq.ParquetWriter(self.tmp, self.schema)
            else:
                import pyarrow.csv as pacsv

                self.writer = pacsv.CSVWriter(self.tmp, self.schema)
        self.writer.write_table(table.cast(self.schema))
        if len(chunk.rejected):
            header = self.rejected == 0
            if header:
                first = chunk.rejected.iloc[0]
                self.first_reject = f"row {first[ROW_COLUMN]}: {first[REASON_COLUMN]}"
            chunk.rejected.to_csv(self.tmp_rejects, mode="a", header=header, index=False)
            self.rejected += len(chunk.rejected)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def commit(self) -> str:
        self.close()
        os.replace(self.tmp, self.out)
        if self.rejected:
            os.replace(self.tmp_rejects, self.rejects)
            return str(self.rejects)
        self.rejects.unlink(missing_ok=True)  # a stale one from an earlier run would mislead
        return ""

    def discard(self) -> None:
        self.close()
        self.tmp.unlink(missing_ok=True)
        self.tmp_rejects.unlink(missing_ok=True)


def collect_dead_temps(folder: Path, prefix: str) -> list[Path]:
    """Remove `<prefix><pid>[.<anything>].tmp` entries whose process is gone (a killed job's
    output or unpacked model); a live job's are left alone."""
    removed = []
    for path in folder.glob(f"{prefix}*.tmp"):
        pid = path.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not is_running(int(pid)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _done(value: ChunkScores) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


class LocalBatchScorer:
    """`mlops.core.batch.BatchScorer` on this machine (see the module doc)."""

    def __init__(self, home: Path | None = None):
        self.home = home

    def predict(self, job: BatchJob, progress: Progress) -> BatchResult:
        data, out = Path(job.data), Path(job.out)
        in_kind, out_kind = file_format(data, "input"), file_format(out, "output")
        if out.exists() and not out.is_file():
            raise UsageError(f"--out {out} exists and is not a regular file")
        if data.resolve() == out.resolve():
            raise UsageError("--out must not be the input file")
        header = read_columns(data, in_kind)  # a duplicated name is refused before the model
        scratch = Path(tempfile.gettempdir())
        collect_dead_temps(scratch, "mlops-batch-")  # models unpacked by killed jobs
        with tempfile.TemporaryDirectory(
            prefix=f"mlops-batch-{os.getpid()}.", suffix=".tmp"
        ) as tmp:
            model_dir, _ = unpack_version(job.version, Path(tmp))
            features = model_features(model_dir)
            columns = check_columns(header, features, job.id_column, data)
            writer = OutputWriter(out, out_kind)
            try:
                result = self._run(job, Path(tmp), columns, in_kind, writer, progress)
            except BaseException:
                writer.discard()
                raise
        return result

    def _run(
        self,
        job: BatchJob,
        folder: Path,
        columns: list[str],
        in_kind: str,
        writer: OutputWriter,
        progress: Progress,
    ) -> BatchResult:
        start = time.perf_counter()
        chunks = read_chunks(Path(job.data), in_kind, columns, job.chunk_rows, job.id_column)
        first, second = next(chunks, None), next(chunks, None)
        if first is None or len(first) == 0:
            raise MlopsError(f"{job.data} has no data rows")
        initargs = (str(folder / "model"), job.id_column)
        rows = scored = 0
        last_report = start
        pending: deque[Future] = deque()
        pool = None
        if second is None or job.workers <= 1:
            inline = ChunkScorer(*initargs)
            submit = lambda frame, row: _done(inline.score(frame, row))  # noqa: E731
        else:
            pool = ProcessPoolExecutor(
                job.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(*initargs, os.getpid()),
            )
            submit = lambda frame, row: pool.submit(_score_in_worker, frame, row)  # noqa: E731

        def drain(keep: int) -> None:
            nonlocal scored, last_report
            while len(pending) > keep:
                chunk = pending.popleft().result()
                writer.write(chunk)
                scored += len(chunk.scored)
                now = time.perf_counter()
                if now - last_report >= PROGRESS_EVERY_S:
                    last_report = now
                    progress(
                        f"{scored + writer.rejected:,} rows scored ({writer.rejected:,} rejected)"
                    )

        try:
            for frame in _chain(first, second, chunks):
                pending.append(submit(frame, rows))
                rows += len(frame)
                drain(keep=2 * max(job.workers, 1))  # bounded: a few chunks in flight
            drain(keep=0)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        check_reject_budget(rows, writer.rejected, job.max_reject_pct, writer.first_reject)
        if scored == 0:
            raise MlopsError(f"no row of {job.data} could be scored: see the reasons above")
        rejects = writer.commit()
        return BatchResult(
            version=job.version.version,
            rows=rows,
            scored=scored,
            rejected=writer.rejected,
            seconds=time.perf_counter() - start,
            out=str(job.out),
            rejects=rejects,
        )


def _chain(first, second, rest) -> Iterator[pd.DataFrame]:
    yield first
    if second is not None:
        yield second
        yield from rest


def model_features(model_dir: Path) -> list[str]:
    """The feature names, in order, from the version's manifest."""
    import json

    try:
        return list(json.loads((model_dir / "manifest.json").read_text())["features"])
    except (OSError, ValueError, KeyError) as exc:
        raise MlopsError(f"the model archive has no readable manifest.json: {exc}") from None


def check_columns(
    columns: list[str], features: list[str], id_column: str | None, data: Path
) -> list[str]:
    """The columns to read (features, then the id); UsageError naming what is missing."""
    missing = missing_columns(columns, features)
    if missing:
        raise UsageError(
            f"{data} lacks the model's feature column(s) {missing}; the version expects "
            f"{features} (a header row is required)"
        )
    if id_column and id_column not in columns:
        raise UsageError(f"{data} has no id column {id_column!r} (data.id_column in the config)")
    return [*features, *([id_column] if id_column else [])]
