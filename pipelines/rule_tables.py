"""Shipped rule tables (`pipelines/rules/*.csv`): read them and hash them for manifests."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import pandas as pd


def read_rule_csv(name: str) -> pd.DataFrame:
    """One shipped rules CSV of the pipelines package, as text-preserving pandas."""
    with (files("dosewise.pipelines") / "rules" / name).open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, keep_default_na=False, na_values=[""])


def rule_sha256(name: str) -> str:
    """SHA-256 of one shipped rules CSV, for manifests."""
    return hashlib.sha256((files("dosewise.pipelines") / "rules" / name).read_bytes()).hexdigest()
