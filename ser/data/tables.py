"""Corpora described by a table instead of a parser: ``data/raw/<name>/labels.csv``.

A table is a UTF-8, comma-separated file whose header names the columns (any order, any case):

- ``path``: the clip's path relative to the corpus folder, ``/`` between folders;
- ``emotion``: the corpus's own emotion word (case-folded, then mapped through ``labels.map``);
- ``speaker``: the speaker id within the corpus (stored as ``<corpus>_<speaker>``, so that two
  corpora never share a speaker by accident: a shared speaker is left out of training when the
  other corpus is held out);
- optional ``gender`` (``male``/``female``, ``m``/``f``, or empty) and ``language`` (an ISO 639-1
  code such as ``en``, or empty = unknown).

Other columns (a transcript, a duration) are ignored, unless the name looks like a misspelling
of a column the table lacks (``emotions``, ``gendre``): that is refused, or the column would be
lost silently.

The table is checked once, whole, when the manifest is built or ``evaluate --labels`` reads it.
A malformed table stops with one line ``<table>:<line>: <problem>`` (and how many further
problems it has) before anything is written: missing or misspelt columns, a row with the wrong
number of fields, an empty path, emotion or speaker, a path that is absolute, leaves the folder
(``..``) or names no file there, a path listed twice, a file that is not UTF-8 CSV text.

Every file under the folder then lands in exactly one ``CorpusScan`` list, as for a parser's
corpus: listed clips are rows; an unlisted copy of a listed clip in another format (same folder
and name, other extension) or a second listed format of it is a duplicate (the lossless one is
kept); a listed file without an audio extension is rejected with the reason; unlisted audio is
"unrecognised" (not listed in the table); everything else, the table itself included, is a
non-audio file.
"""

import csv
import io
import re
from pathlib import Path, PurePosixPath

from ser.core.errors import DataError
from ser.core.schema import nearest, relative_path_problem
from ser.data.corpora import NOT_UTF8, ClipLabel, CorpusScan, is_utf8, preference

REQUIRED_COLUMNS = ("path", "emotion", "speaker")
OPTIONAL_COLUMNS = ("gender", "language")
HEADER_EXAMPLE = "path,emotion,speaker[,gender,language]"
GENDERS = {"": "", "male": "male", "m": "male", "female": "female", "f": "female"}
_LANGUAGE = re.compile(r"[a-z]{2}")
# Spreadsheet programs in many locales write ';' or tabs when asked for CSV.
_OTHER_SEPARATORS = (";", "\t", "|")


class _RowProblem(ValueError):
    """One row of a table is unusable; the message says why (without the line number)."""



def line_of(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def read_records(table: Path) -> list[tuple[int, list[str]]]:
    """The table's non-blank CSV records with the line each starts on; ``DataError`` naming the
    line for a file that is not UTF-8 CSV text."""
    try:
        data = Path(table).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{table}: not found") from None
    except OSError as err:
        raise DataError(f"{table}: cannot read ({err.strerror or err})") from None
    if b"\0" in data:
        # A spreadsheet (.xlsx is a zip) or audio saved under the table's name.
        nul = data.index(b"\0")
        raise DataError(f"{table}:{line_of(data, nul)}: binary data, not CSV text "
                        "(a spreadsheet? save it as CSV UTF-8)")
    try:
        # Plain utf-8 (not utf-8-sig, whose error offsets skip the BOM), then the BOM that
        # Excel's "CSV UTF-8" writes first is dropped.
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise DataError(f"{table}:{line_of(data, err.start)}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
                        "save the table as CSV UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, start = [], 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):   # blank lines and ",,," rows hold nothing
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{table}:{reader.line_num or 1}: not valid CSV ({err})") from None
    if not records:
        raise DataError(f"{table}:1: empty: the first line must be the header {HEADER_EXAMPLE}")
    return records


def header_columns(table: Path, line: int, header: list[str]) -> dict[str, int]:
    """Column name -> index from the header row; ``DataError`` for a duplicate, misspelt or
    missing column."""
    names = [cell.strip().lower() for cell in header]
    where = f"{table}:{line}"
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    if len(names) == 1 and names[0] not in known:
        # One column that is no column name: another separator, or not a table at all (JSON, text).
        sep = next((sep for sep in _OTHER_SEPARATORS if sep in header[0]), None)
        looks = f"it looks separated by {sep!r}" if sep else f"expected the header {HEADER_EXAMPLE}"
        raise DataError(f"{where}: the first line has no commas: not a comma-separated table ({looks})")
    for i, name in enumerate(names):
        if name and name in names[:i]:
            raise DataError(f"{where}: column {name} appears twice")
    absent = [k for k in known if k not in names]
    for name in names:
        meant = nearest(name, absent) if name and name not in known else None
        if meant is not None:
            raise DataError(f"{where}: column {name} is not known (did you mean {meant}?)")
    missing = [k for k in REQUIRED_COLUMNS if k not in names]
    if missing:
        raise DataError(f"{where}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"(the header has: {', '.join(n or '(empty)' for n in names)}; "
                        f"needed: {HEADER_EXAMPLE})")
    return {name: i for i, name in enumerate(names) if name in known}


def parse_record(cells: list[str], columns: dict, width: int, corpus: str) -> tuple[PurePosixPath, ClipLabel]:
    """One row as ``(relative path, ClipLabel)``; ``_RowProblem`` saying what is wrong with it."""
    if len(cells) != width:
        raise _RowProblem(f"{len(cells)} field{'s' if len(cells) != 1 else ''}, the header has {width}")

    def cell(name):
        return cells[columns[name]].strip() if name in columns else ""

    text = cell("path")
    problem = relative_path_problem(text)
    if problem:
        raise _RowProblem("empty path" if not text else f"path {text} {problem}")
    emotion, speaker = cell("emotion").lower(), cell("speaker")
    if not emotion:
        raise _RowProblem("empty emotion")
    if not speaker:
        raise _RowProblem("empty speaker")
    gender = GENDERS.get(cell("gender").lower())
    if gender is None:
        raise _RowProblem(f"gender must be male, female or empty (got {cell('gender')!r})")
    language = cell("language").lower()
    if language and not _LANGUAGE.fullmatch(language):
        raise _RowProblem(f"language must be an ISO 639-1 code such as en, or empty (got {cell('language')!r})")
    return PurePosixPath(text), ClipLabel(emotion, f"{corpus}_{speaker}", gender, language)


def parse_table(table: Path, corpus: str) -> tuple[dict, list]:
    """``({relative path: (line, ClipLabel)}, [(line, problem)])`` for every row of ``table``.

    File-level problems (not UTF-8 CSV, the header) raise ``DataError`` at once; row problems
    are collected, one per row, so that the caller can report the first and count the rest.
    """
    records = read_records(table)
    (header_line, header), rows = records[0], records[1:]
    columns = header_columns(table, header_line, header)
    listed, problems = {}, []
    for line, cells in rows:
        try:
            rel, clip = parse_record(cells, columns, len(header), corpus)
        except _RowProblem as err:
            problems.append((line, str(err)))
            continue
        if rel in listed:
            problems.append((line, f"path {rel} is listed twice (also on line {listed[rel][0]})"))
            continue
        listed[rel] = (line, clip)
    return listed, problems


def missing_file_problem(corpus_dir: Path, rel: PurePosixPath, by_lower: dict) -> str:
    """What to say about a listed path that is not a file under ``corpus_dir``; ``by_lower`` maps
    the lower-cased paths of the files there to the paths (a table written on a Mac or Windows,
    whose file systems ignore case, may not match the names' case)."""
    if (corpus_dir / rel).is_dir():
        return f"path {rel} is a folder, not a file"
    same_but_case = by_lower.get(rel.as_posix().lower())
    hint = (f" (did you mean {same_but_case}? names are case-sensitive)" if same_but_case
            else " (separate folders with /, not \\)" if "\\" in rel.as_posix() else "")
    return f"path {rel} does not exist in {corpus_dir}{hint}"


def problems_line(table: Path, problems: list) -> str:
    """The one-line error for a table: its first problem (by line) and how many more there are."""
    line, text = min(problems, key=lambda p: p[0])
    more = len(problems) - 1
    return f"{table}:{line}: {text}" + (f" (and {more} more problem{'s' if more > 1 else ''} in this table)"
                                        if more else "")


def classify_listed(files, listed: dict, extensions, table_name: str) -> tuple[CorpusScan, list]:
    """Sort a corpus folder's relative file paths by its table (pure: reads no files):
    ``(CorpusScan, [(line, problem)])``.

    ``listed`` is ``parse_table``'s mapping; every listed path must be among ``files``. Copies of
    one recording are the files of one folder and name with different extensions: of those
    listed, the lossless one is kept (two listed copies with different labels are a problem:
    the table contradicts itself); unlisted copies of a listed one are duplicates of it.
    """
    exts = {e.lower() for e in extensions}
    scan = CorpusScan([], [], 0, unrecognised_reason=f"audio file not listed in {table_name}",
                      unrecognised_note=f"audio files not listed in {table_name}")
    recordings = {}
    for rel in sorted(files):
        if rel in listed and rel.suffix.lower() not in exts:
            scan.rejected.append((rel, f"listed in {table_name}, but {rel.suffix or 'a name without extension'} "
                                       f"is not an audio extension ({', '.join(sorted(exts))})"))
        elif rel not in listed and (rel.suffix.lower() not in exts or rel.name.startswith(".")):
            scan.other_files += 1
        elif not is_utf8(str(rel)):
            scan.rejected.append((rel, NOT_UTF8))   # never listed: the table is UTF-8 text
        else:
            recordings.setdefault(rel.with_suffix(""), []).append(rel)
    problems = []
    for copies in recordings.values():
        named = sorted((rel for rel in copies if rel in listed), key=preference)
        if not named:
            scan.unrecognised.extend(copies)
            continue
        kept = named[0]
        line, clip = listed[kept]
        scan.rows.append((kept, clip))
        for other in copies:
            if other in named[1:] and listed[other][1] != clip:
                problems.append((listed[other][0], f"{other} is {kept} (line {line}) in another format, "
                                                   "with another label"))
            elif other != kept:
                scan.duplicates.append((other, kept))
    for part in (scan.rows, scan.unrecognised, scan.rejected, scan.duplicates):
        part.sort()
    return scan, problems


def scan_table(corpus_dir: Path, table: Path, corpus: str, extensions) -> CorpusScan:
    """Classify every file under ``corpus_dir`` by ``table``; ``DataError`` (one line, naming the
    table and line) for a malformed table or one without a single row."""
    listed, problems = parse_table(table, corpus)
    files = [PurePosixPath(p.relative_to(corpus_dir).as_posix()) for p in corpus_dir.rglob("*") if p.is_file()]
    present = set(files)
    by_lower = {rel.as_posix().lower(): rel for rel in files}
    problems += [(line, missing_file_problem(corpus_dir, rel, by_lower))
                 for rel, (line, _) in listed.items() if rel not in present]
    if not problems:
        scan, problems = classify_listed(files, listed, extensions, Path(table).name)
    if problems:
        raise DataError(problems_line(table, problems))
    if not listed:
        raise DataError(f"{table}: no clips listed (the header and nothing else)")
    return scan
