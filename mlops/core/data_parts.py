"""A CSV file as several files of its rows, for an input that is shared out by file.

With `sagemaker.processing_instance_count` N, SageMaker gives each instance of validate
and preprocess its own share of the input's S3 objects (ShardedByS3Key): one object
would feed one instance and leave the others none. `mlops pipeline run --backend
sagemaker --data FILE` therefore uploads a local file as N parts, each with the header
and every Nth record, byte for byte as the file wrote it (the steps split rows by their
values, so which part holds a row does not matter).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlops.core.errors import UsageError


def csv_records(path: Path) -> Iterator[bytes]:
    """The file's records as written, line ends included: a line break inside a quoted
    value stays in its record (RFC 4180: quotes pair up within a record, "" included)."""
    record, quotes = b"", 0
    with Path(path).open("rb") as f:
        for line in f:
            record += line
            quotes += line.count(b'"')
            if quotes % 2 == 0:
                yield record
                record, quotes = b"", 0
    if record:
        yield record


def write_parts(path: Path, count: int, folder: Path) -> list[Path]:
    """`path` as `count` files in `folder` (`<stem>-01.csv` ...): each the header and every
    `count`th record. Refused (one line) when a part would have no rows."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [folder / f"{Path(path).stem}-{k + 1:02d}.csv" for k in range(count)]
    records = csv_records(path)
    header = next(records, b"")
    if header and not header.endswith(b"\n"):
        header += b"\n"
    files = [name.open("wb") for name in names]
    rows = 0
    try:
        for f in files:
            f.write(header)
        for rows, record in enumerate(records, start=1):
            files[(rows - 1) % count].write(record if record.endswith(b"\n") else record + b"\n")
    finally:
        for f in files:
            f.close()
    if rows < count:
        raise UsageError(
            f"{path} has {rows} data row(s): too few for processing_instance_count {count} "
            "(each instance needs a part)"
        )
    return names
