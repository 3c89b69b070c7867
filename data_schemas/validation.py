"""Validation at layer boundaries: readable schema errors, quarantine splits, trajectory reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors

from . import columns as c
from .errors import BadInputError, SchemaViolation
from .io import read_parquet_checked
from .manifest import RunManifest
from .quarantine import empty_quarantine, make_quarantine
from .trajectory import SplitsSchema, trajectory_schema_for

_MAX_LISTED = 5


def _summarise(errors: pd.DataFrame) -> str:
    """Turn pandera's failure_cases table into a few readable clauses."""
    parts = []
    grouped = errors.groupby(["column", "check"], dropna=False, sort=False)
    for (column, check), cases in list(grouped)[:_MAX_LISTED]:
        examples = ", ".join(repr(v) for v in cases["failure_case"].head(3).tolist())
        where = f"column `{column}`" if isinstance(column, str) and column else "table"
        parts.append(f"{where} fails {check} ({len(cases)} rows; e.g. {examples})")
    return "; ".join(parts)


def validate_frame(frame: pd.DataFrame, schema: pa.DataFrameSchema, what: str) -> pd.DataFrame:
    """Validate `frame` lazily and raise one `SchemaViolation` that lists every broken rule."""
    try:
        return schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise SchemaViolation(
            f"{what} does not match {schema.name}: {_summarise(exc.failure_cases)}.",
            "Fix the listed columns upstream, or re-run the producer of this table.",
        ) from exc
    except SchemaError as exc:  # pragma: no cover - non-lazy path
        raise SchemaViolation(f"{what} does not match {schema.name}: {exc}.", "") from exc


@dataclass(frozen=True)
class SplitFrame:
    """Rows that passed a boundary check and the quarantine records of those that did not."""

    kept: pd.DataFrame
    quarantined: pd.DataFrame


def split_valid(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, *, stage: str, key_columns: list[str],
    id_column: str | None = None,
) -> SplitFrame:
    """Keep the rows that satisfy `schema`'s row-wise checks, quarantine the rest with reasons.

    `id_column` (a patient id) is kept out of `row_key`, as in `make_quarantine`, for the writer to
    replace with the run's pseudonym.

    Table-wide failures (a missing column, a wrong dtype) cannot be blamed on rows: they raise.
    """
    try:
        return SplitFrame(schema.validate(frame, lazy=True), empty_quarantine())
    except SchemaErrors as exc:
        cases = exc.failure_cases
        row_cases = cases[cases["index"].notna()]
        if len(row_cases) < len(cases):
            table_cases = cases[cases["index"].isna()]
            raise SchemaViolation(
                f"{stage}: input does not match {schema.name}: {_summarise(table_cases)}.",
                "The table's columns or dtypes are wrong; check the source file.",
            ) from exc
        parts = []
        for (column, check), grp in row_cases.groupby(["column", "check"], sort=False):
            rows = frame.loc[frame.index.isin(grp["index"].unique())]
            parts.append(
                make_quarantine(
                    rows, stage=stage, rule=f"{column}:{check}", column=str(column),
                    reason=f"`{column}` fails {check}", key_columns=key_columns, id_column=id_column,
                )
            )
        bad = frame.index.isin(row_cases["index"].unique())
        return SplitFrame(frame.loc[~bad].copy(), pd.concat(parts, ignore_index=True))


def read_trajectories(
    folder: Path, split: str | None = None
) -> tuple[pd.DataFrame, RunManifest]:
    """Read a finished trajectories folder, validated against its manifest's dataset contract.

    With `split`, keep only that split's episodes (a `split` column is added either way).
    """
    folder = Path(folder)
    manifest = RunManifest.read(folder)
    if manifest.dataset is None:
        raise BadInputError(
            f"{folder} is a `{manifest.kind}` folder, not a trajectories folder.",
            "Pass the --out folder of `dosewise etl sepsis` or `dosewise synth icu-sepsis`.",
        )
    frame = read_parquet_checked(folder / "trajectories.parquet")
    frame = validate_frame(frame, trajectory_schema_for(manifest.dataset), "trajectories.parquet")
    splits = validate_frame(
        read_parquet_checked(folder / "splits.parquet"), SplitsSchema, "splits.parquet"
    )
    frame = frame.merge(splits, on=c.EPISODE_ID, how="left", validate="many_to_one")
    if frame[c.SPLIT].isna().any():
        raise SchemaViolation(
            f"{int(frame[c.SPLIT].isna().sum())} trajectory rows have no split in splits.parquet.",
            "Re-run the producer; every episode must be assigned to a split.",
        )
    return (frame if split is None else select_split(frame, split, folder)), manifest


def select_split(frame: pd.DataFrame, split: str, folder: Path) -> pd.DataFrame:
    """The rows of one split of a frame read by `read_trajectories` (index reset); an unknown or
    empty split is an error that names the folder."""
    if split not in c.SPLITS:
        raise BadInputError(f"Unknown split `{split}`.", f"Use one of {', '.join(c.SPLITS)}.")
    part = frame[frame[c.SPLIT] == split].reset_index(drop=True)
    if part.empty:
        raise BadInputError(
            f"Split `{split}` of {folder} has no episodes.",
            "Choose another split or re-run the producer with a different split ratio.",
        )
    return part
