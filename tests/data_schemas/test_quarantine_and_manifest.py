"""Quarantine records, split_valid conservation, and the manifest round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from dosewise.data_schemas import (
    IncompleteOutput,
    QuarantineSchema,
    RunManifest,
    StageRecord,
    validate_frame,
)
from dosewise.data_schemas.validation import split_valid


def test_split_valid_conserves_rows_and_names_the_rule() -> None:
    schema = pa.DataFrameSchema({"map_mmhg": pa.Column(float, pa.Check.in_range(0, 300))})
    frame = pd.DataFrame({"stay_id": [1, 2, 3, 4], "map_mmhg": [70.0, 400.0, -5.0, 90.0]})
    result = split_valid(frame, schema, stage="outliers", key_columns=["stay_id"])
    assert len(result.kept) + len(result.quarantined) == len(frame)
    assert sorted(result.kept["stay_id"]) == [1, 4]
    validate_frame(result.quarantined, QuarantineSchema, "quarantine")
    assert set(result.quarantined["row_key"]) == {"stay_id=2", "stay_id=3"}
    assert result.quarantined["rule"].str.startswith("map_mmhg:").all()


def test_split_valid_raises_on_table_level_failure() -> None:
    schema = pa.DataFrameSchema({"map_mmhg": pa.Column(float)})
    with pytest.raises(Exception, match="map_mmhg"):
        split_valid(pd.DataFrame({"x": [1.0]}), schema, stage="s", key_columns=["x"])


def test_manifest_round_trip_and_completeness(tmp_path: Path) -> None:
    (tmp_path / "out.parquet").write_bytes(b"data")
    manifest = RunManifest.start("test", {"a": 1}, seed=3)
    manifest.stages.append(StageRecord(name="s", rows_in=2, rows_out=1, rows_quarantined=1, seconds=0.1))
    manifest.record_outputs(tmp_path)
    with pytest.raises(IncompleteOutput):
        RunManifest.read(tmp_path)
    manifest.write(tmp_path)
    back = RunManifest.read(tmp_path)
    assert back.outputs == {"out.parquet": manifest.outputs["out.parquet"]}
    assert back.config_sha256 == manifest.config_sha256 and back.seed == 3
    assert back.code_version.package_version


def test_config_hash_ignores_key_order() -> None:
    a = RunManifest.start("k", {"x": 1, "y": {"b": 2, "a": 1}})
    b = RunManifest.start("k", {"y": {"a": 1, "b": 2}, "x": 1})
    assert a.config_sha256 == b.config_sha256
