"""The chemotherapy ETL run in stages and patient batches: the outputs are the same, table by table
and bit by bit, as those of the reference (`chemo_fingerprint.json`), whatever the batch size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .chemo_fingerprint import CASES, REFERENCE, run_case, write_sources

#: (case, extra overrides): each case as configured, and the OMOP cases in batches of 7 patients
RUNS = [(name, []) for name in sorted(CASES)] + [
    (name, ["input.batch_patients=7"]) for name in sorted(CASES) if name.startswith("omop")
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sources(tmp_path_factory.mktemp("chemo_fingerprint") / "src")


@pytest.mark.parametrize(("case", "extra"), RUNS, ids=[f"{n}{'-batched' if e else ''}" for n, e in RUNS])
def test_outputs_are_identical_to_the_reference(
    sources: Path, tmp_path: Path, case: str, extra: list[str]
) -> None:
    expected = json.loads(REFERENCE.read_text())[case]
    found = json.loads(json.dumps(run_case(sources, case, tmp_path / "out", extra)))
    assert found["stages"] == expected["stages"]
    tables = expected["tables"]
    changed = sorted(name for name in tables if found["tables"].get(name) != tables[name])
    assert not changed, f"{case} {extra}: these outputs changed: {changed}"
    assert found["tables"].keys() == expected["tables"].keys()
