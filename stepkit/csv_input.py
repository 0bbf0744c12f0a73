"""Checked CSV reading: a DataFrame, or one line naming why the file is not usable CSV.

pandas reads many broken files without complaint (another delimiter becomes one
column, short rows become NaN) or fails with a parser trace. A pipeline runner
shows only the last line of a failed step, so every refusal here is an
`UnusableInput` whose message names the file and the problem.
"""

from __future__ import annotations

import codecs
import csv
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from stepkit import UnusableInput

HEAD_BYTES = 1 << 16  # header and content sniffing read this much
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
SIGNATURES = {  # leading bytes of formats people send by mistake
    b"\x1f\x8b": "a gzip archive",
    b"PK\x03\x04": "a zip archive (an Excel workbook?)",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document",
    b"%PDF": "a PDF document",
}


def _size_text(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size} bytes"


def check_file(path: Path, max_mb: float) -> int:
    """Refuse what is not a readable, non-empty file within the size limit; return its size."""
    if not path.exists():
        raise UnusableInput(f"no such file: {path}")
    if path.is_dir():
        raise UnusableInput(f"{path} is a directory, expected a CSV file")
    if not path.is_file():
        raise UnusableInput(f"{path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise UnusableInput(f"{path} is empty (0 bytes)")
    if size > max_mb * 2**20:
        raise UnusableInput(f"{path} is {_size_text(size)}, over the limit of {max_mb:g} MB")
    return size


def decode_head(path: Path, head: bytes) -> str:
    """The first bytes as text; refuse binary and non-UTF-8 content."""
    for magic, kind in SIGNATURES.items():
        if head.startswith(magic):
            raise UnusableInput(f"{path.name} is {kind}, expected CSV text")
    if b"\x00" in head:
        raise UnusableInput(f"{path.name} looks binary (it contains NUL bytes), expected CSV text")
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise UnusableInput(_not_utf8(path, exc.object[exc.start], exc.start)) from None
    return text.removeprefix("\ufeff")


def _not_utf8(path: Path, byte: int, offset: int) -> str:
    return (
        f"{path.name} is not UTF-8 text (byte 0x{byte:02x} at offset {offset}); re-save it as UTF-8"
    )


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_header(path: Path, text: str, more_follows: bool) -> list[str]:
    """Column names from the first line; refuse a header that is not one."""
    first, newline, _ = text.partition("\n")
    if not newline and more_follows:
        raise UnusableInput(
            f"{path.name}: the first line is over {HEAD_BYTES} bytes, not a CSV header"
        )
    first = first.rstrip("\r")
    if not first.strip():
        raise UnusableInput(f"{path.name}: the first line is blank, expected a header row")
    names = next(csv.reader([first]))
    if len(names) == 1:
        for delimiter, label in OTHER_DELIMITERS.items():
            if delimiter in first:
                raise UnusableInput(
                    f"{path.name} is {label}-separated ({delimiter!r} in the header), "
                    "expected comma-separated values"
                )
    named = [n for n in names if n.strip()]
    if named and all(_looks_numeric(n) for n in named):
        raise UnusableInput(
            f"{path.name} has no header row: the first line looks like data ({first[:60]})"
        )
    empty = [i for i, name in enumerate(names, 1) if not name.strip()]
    if empty:
        raise UnusableInput(f"{path.name}: header has no name for column(s) {empty}")
    duplicated = duplicated_names(names)
    if duplicated:
        raise UnusableInput(f"{path.name}: duplicated header column(s) {duplicated}")
    return names


def duplicated_names(names: list[str]) -> list[str]:
    """Names a header has more than once (sorted): such a header is refused, by this check
    and by `mlops batch predict`."""
    return sorted({n for n in names if names.count(n) > 1})


def _ragged_message(path: Path, parser_message: str, columns: int) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", parser_message)
    if found:
        _, line, saw = found.groups()
        return f"{path.name}: ragged rows: line {line} has {saw} fields, the header has {columns}"
    return f"{path.name} cannot be parsed as CSV: {parser_message.strip().splitlines()[-1]}"


def find_short_rows(path: Path, columns: int) -> tuple[int, int, int]:
    """(first line number, its field count, how many) of rows with fewer fields than the header.

    pandas fills missing trailing fields with NaN silently, so this full scan runs
    only when the last column has a missing value.
    """
    first, fields, count = 0, 0, 0
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader, None)
        for row in reader:
            if row and len(row) < columns:
                if not count:
                    first, fields = reader.line_num, len(row)
                count += 1
    return first, fields, count


def _utf8_error_offset(path: Path) -> tuple[int, int]:
    """(byte, file offset) of the first invalid UTF-8 sequence (on the error path only)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            pending = len(decoder.getstate()[0])  # an unfinished character from the last block
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return exc.object[exc.start], offset - pending + exc.start
            offset += len(block)
    pending = len(decoder.getstate()[0])
    try:  # a character cut short by the end of the file
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return exc.object[exc.start], offset - pending + exc.start
    return 0, offset


def not_utf8(path: Path) -> str:
    """The one line for a file that is not UTF-8: where its first bad byte is."""
    return _not_utf8(Path(path), *_utf8_error_offset(Path(path)))


def read_csv_checked(path: Path, max_mb: float) -> pd.DataFrame:
    """One CSV file as a DataFrame, or UnusableInput with one line naming the problem."""
    path = Path(path)
    size = check_file(path, max_mb)
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    names = parse_header(path, decode_head(path, head), more_follows=size > len(head))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            df = pd.read_csv(path, encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        raise UnusableInput(_ragged_message(path, str(exc), len(names))) from None
    except UnicodeDecodeError:
        raise UnusableInput(not_utf8(path)) from None
    if df.empty:
        raise UnusableInput(f"{path.name} has a header but no data rows")
    if df.iloc[:, -1].isna().any():
        line, fields, count = find_short_rows(path, len(names))
        if count:
            raise UnusableInput(
                f"{path.name}: ragged rows: line {line} has {fields} fields, the header has "
                f"{len(names)} ({count} short row(s))"
            )
    return df


def read_csv_chunks(path: Path, max_mb: float, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """One CSV file, checked as read_csv_checked checks it, `chunk_rows` rows at a time (each
    chunk typed on its own rows, as pandas types a file it streams)."""
    path = Path(path)
    size = check_file(path, max_mb)
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    names = parse_header(path, decode_head(path, head), more_follows=size > len(head))
    empty, short = True, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            for chunk in pd.read_csv(path, encoding="utf-8-sig", chunksize=chunk_rows):
                empty = empty and chunk.empty
                short = short or bool(chunk.iloc[:, -1].isna().any())
                yield chunk
    except pd.errors.ParserError as exc:
        raise UnusableInput(_ragged_message(path, str(exc), len(names))) from None
    except UnicodeDecodeError:
        raise UnusableInput(not_utf8(path)) from None
    if empty:
        raise UnusableInput(f"{path.name} has a header but no data rows")
    if short:
        line, fields, count = find_short_rows(path, len(names))
        if count:
            raise UnusableInput(
                f"{path.name}: ragged rows: line {line} has {fields} fields, the header has "
                f"{len(names)} ({count} short row(s))"
            )


def input_files(raw: Path) -> list[Path]:
    """The CSV files of an input: the file itself, or every *.csv in a folder."""
    if not raw.exists():
        raise UnusableInput(f"no such file or folder: {raw}")
    if raw.is_dir():
        files = sorted(raw.glob("*.csv"))
        if not files:
            raise UnusableInput(f"no .csv file in {raw}")
        return files
    return [raw]


def read_input(raw: Path, max_mb: float) -> pd.DataFrame:
    """All CSV files of an input, checked one by one and concatenated (as preprocess reads them)."""
    files = input_files(raw)
    frames = [read_csv_checked(f, max_mb) for f in files]
    for f, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != list(frames[0].columns):
            raise UnusableInput(f"{f} has other columns than {files[0]}")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
