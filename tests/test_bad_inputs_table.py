"""Bad input, one row per kind: (corruption, command, expected exit code, expected message fragment).

Each row builds a small clean MIMIC-IV folder (two stays), applies its corruption, runs the real
`dosewise` command and checks the exit code, a fragment of the one-line message and that no
traceback is printed (tracebacks only with `--debug`). Adding a kind of bad input is adding a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app

from .pipelines.mimic_builders import Rows, merge_tables, septic_stay_tables, write_mimic4

SECRET_ID = 31_337_001  # the repeated identifier; it must never appear in a message


def _tables() -> dict[str, Rows]:
    return merge_tables(septic_stay_tables(1, 1, 1), septic_stay_tables(SECRET_ID, SECRET_ID, SECRET_ID))


def _repeat(table: str, change: dict[str, str] | None = None) -> Callable[[dict[str, Rows]], None]:
    """Corruption: the row of SECRET_ID in `table` twice, the copy changed by `change` (conflict)."""
    def corrupt(tables: dict[str, Rows]) -> None:
        row = next(r for r in tables[table] if SECRET_ID in r.values())
        tables[table].append({**row, **(change or {})})
    return corrupt


@dataclass(frozen=True)
class Case:
    """One kind of bad input."""

    name: str
    args: Callable[[Path, Path], list[str]]  # (source folder, tmp folder) -> command line
    fragment: str
    corrupt: Callable[[dict[str, Rows]], None] | None = None
    touch: Callable[[Path, Path], None] | None = None  # (source, tmp) -> change files on disk
    exit_code: int = 2


def _etl(out: Callable[[Path, Path], Path] = lambda s, t: t / "out", *sets: str
         ) -> Callable[[Path, Path], list[str]]:
    def args(source: Path, tmp: Path) -> list[str]:
        extra = [item for s in ("output.pseudonymize_ids=false", "threads=1", *sets) for item in ("--set", s)]
        return ["etl", "sepsis", "--source", str(source), "--out", str(out(source, tmp)), *extra]
    return args


def _not_parquet(source: Path, tmp: Path) -> None:
    (source / "hosp" / "admissions.csv.gz").unlink()
    (source / "hosp" / "admissions.parquet").write_text("subject_id,hadm_id\n1,1\n", encoding="utf-8")


def _binary_config(source: Path, tmp: Path) -> None:
    (tmp / "config.toml").write_bytes(bytes(range(256)) * 4)


def _regular_file(source: Path, tmp: Path) -> None:
    (tmp / "notes.txt").write_text("a regular file\n", encoding="utf-8")


CASES = [
    Case("admissions: same hadm_id twice, exact", _etl(), "repeats 1 hadm_id value(s) on 2 rows (exact",
         corrupt=_repeat("admissions")),
    Case("admissions: same hadm_id twice, conflicting", _etl(), "on 2 rows (rows that disagree",
         corrupt=_repeat("admissions", {"admittime": "2150-01-01 02:00:00"})),
    Case("patients: same subject_id twice, exact", _etl(), "repeats 1 subject_id value(s) on 2 rows (exact",
         corrupt=_repeat("patients")),
    Case("patients: same subject_id twice, conflicting", _etl(), "subject_id must be unique in patients",
         corrupt=_repeat("patients", {"gender": "F"})),
    Case("icustays: same stay_id twice, exact", _etl(), "repeats 1 stay_id value(s) on 2 rows (exact",
         corrupt=_repeat("icustays")),
    Case("icustays: same stay_id twice, conflicting", _etl(), "stay_id value(s) on 2 rows (rows that",
         corrupt=_repeat("icustays", {"outtime": "2150-01-03 08:00:00"})),
    Case("a *.parquet source file that is not parquet", _etl(), "must be a parquet file", touch=_not_parquet),
    Case("config validate on a binary file", lambda s, t: ["config", "validate", str(t / "config.toml")],
         "must be UTF-8 text (TOML)", touch=_binary_config),
    Case("--set memory_limit=banana", _etl(lambda s, t: t / "out", "memory_limit=banana"),
         "must be a DuckDB memory size"),
    Case("--set memory_limit below what DuckDB needs", _etl(lambda s, t: t / "out", "memory_limit=10KB"),
         "must be at least 100MB"),
    Case("--set threads=100000 (hung before)", _etl(lambda s, t: t / "out", "threads=100000"),
         "less than or equal to 256"),
    Case("--out below a regular file", _etl(lambda s, t: t / "notes.txt" / "out"),
         "lies below the regular file", touch=_regular_file),
    Case("--out is a regular file", _etl(lambda s, t: t / "notes.txt"), "Got a path that is a file",
         touch=_regular_file),
    Case("--out on a file system that refuses writes", _etl(lambda s, t: Path("/sys/dosewise_out")),
         "must be a writable folder"),
    Case("--out equal to --source", _etl(lambda s, t: s), "must be outside --source"),
    Case("--out inside --source", _etl(lambda s, t: s / "hosp" / "out"), "Got a folder inside it"),
    Case("synth --out below a regular file",
         lambda s, t: ["synth", "icu", "--out", str(t / "notes.txt" / "x"), "--stays", "10"],
         "lies below the regular file", touch=_regular_file),
    Case("evaluate --out inside --trajectories",
         lambda s, t: ["evaluate", "--trajectories", str(s), "--policy", str(t), "--out", str(s / "ope")],
         "must be outside --trajectories"),
    Case("train --out equal to --trajectories",
         lambda s, t: ["train", "--trajectories", str(s), "--out", str(s), "--no-track"],
         "must be outside --trajectories"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_exits_with_a_clear_message(case: Case, tmp_path: Path) -> None:
    tables = _tables()
    if case.corrupt is not None:
        case.corrupt(tables)
    source = write_mimic4(tmp_path / "src", tables)
    if case.touch is not None:
        case.touch(source, tmp_path)
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    result = CliRunner().invoke(app, case.args(source, tmp_path), env={"COLUMNS": "400"})
    output = result.output
    assert result.exit_code == case.exit_code, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith(("Error:", "Hint:"))]
    assert [line.split(":")[0] for line in lines] == ["Error", "Hint"], output  # one line each
    assert case.fragment in lines[0], output
    assert str(SECRET_ID) not in output  # identifiers never leave the pipeline in a message
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before  # raw data untouched


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    tables = _tables()
    _repeat("icustays")(tables)
    source = write_mimic4(tmp_path / "src", tables)
    result = CliRunner().invoke(app, ["--debug", *_etl()(source, tmp_path)])
    assert result.exit_code == 2 and "Traceback" in result.output


def test_threads_at_the_documented_maximum_still_run(tmp_path: Path) -> None:
    """The bound is no smaller than needed: 256 threads finish on a small machine (no hang)."""
    source = write_mimic4(tmp_path / "src", _tables())
    result = CliRunner().invoke(app, _etl(lambda s, t: t / "out", "threads=256")(source, tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "manifest.json").is_file()
