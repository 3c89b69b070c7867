"""The sepsis ETL as declared stages: the outputs are the same, table by table and bit by bit, as
those of the ETL before it was split into stages (`sepsis_fingerprint.json`, computed from main
before the change), and the stage list is consistent with the SQL files it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .sepsis_fingerprint import CASES, REFERENCE, run_case, write_source


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source(tmp_path_factory.mktemp("fingerprint") / "src")


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_are_identical_to_the_reference(source: Path, tmp_path: Path, case: str) -> None:
    expected = json.loads(REFERENCE.read_text())[case]
    found = json.loads(json.dumps(run_case(source, case, tmp_path / "out")))
    assert found["stages"] == expected["stages"]
    assert found["funnel"] == expected["funnel"]
    changed = sorted(name for name in expected["tables"] if found["tables"].get(name) != expected["tables"][name])
    assert not changed, f"{case}: these outputs changed: {changed}"
    assert found["tables"].keys() == expected["tables"].keys()
