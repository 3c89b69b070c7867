"""Pseudonymised identifiers: an HMAC-SHA-256 of the source id under a secret salt.

Every output of a run names stays and patients the same way (`RunIds`): the trajectories, the
cohort and every quarantine file, so no raw MIMIC id leaves the pipeline unless
`output.pseudonymize_ids = false`. The salt itself is never written; its fingerprint (an HMAC of a
fixed message) is, so a rerun with another salt, which moves episodes between splits, is detected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dosewise.data_schemas import MANIFEST_NAME, ConfigError

MIN_SALT_LENGTH = 16
_FINGERPRINT_MESSAGE = b"dosewise id-salt fingerprint v1"


def resolve_salt(salt: str, env_var: str) -> str:
    """The salt from the config, else from the environment; an error if neither is set or it is short."""
    value = salt or os.environ.get(env_var, "")
    if not value:
        raise ConfigError(
            f"Pseudonymised ids need a salt, but `output.id_salt` is empty and ${env_var} is not set.",
            f"export {env_var}=<secret of at least {MIN_SALT_LENGTH} characters>, or pass --set "
            "output.id_salt=<secret> (or --set output.pseudonymize_ids=false to keep raw ids).",
        )
    if len(value) < MIN_SALT_LENGTH:
        where = "`output.id_salt`" if salt else f"${env_var}"
        raise ConfigError(
            f"The id salt ({where}) must be at least {MIN_SALT_LENGTH} characters. "
            f"Got {len(value)} characters.",
            "Use a long random secret, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`.",
        )
    return value


def salt_fingerprint(salt: str) -> str:
    """16 hex digits identifying the salt without revealing it (HMAC of a fixed message).

    >>> salt_fingerprint("a" * 16) == salt_fingerprint("a" * 16) != salt_fingerprint("b" * 16)
    True
    """
    return hmac.new(salt.encode("utf-8"), _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]


def pseudonymize_ids(ids: Iterable[object], salt: str, prefix: str = "ep_") -> list[str]:
    """Stable pseudonyms: `prefix` + the first 16 hex digits of HMAC-SHA-256(salt, id).

    >>> pseudonymize_ids([1], "s") == pseudonymize_ids([1], "s") != pseudonymize_ids([1], "t")
    True
    """
    key = salt.encode("utf-8")
    return [prefix + hmac.new(key, str(i).encode("utf-8"), hashlib.sha256).hexdigest()[:16] for i in ids]


@dataclass(frozen=True)
class RunIds:
    """How one run names stays and patients in all of its outputs (pseudonyms, or raw when configured)."""

    salt: str = ""

    @property
    def pseudonymised(self) -> bool:
        """True when ids are replaced by salted pseudonyms."""
        return bool(self.salt)

    @property
    def fingerprint(self) -> str | None:
        """The salt's fingerprint for the manifest (None when raw ids are kept)."""
        return salt_fingerprint(self.salt) if self.salt else None

    def episode_ids(self, stay_ids: Iterable[object]) -> list[str]:
        """Episode id of each stay: `ep_<hmac>`, or `stay_<raw id>` when raw ids are configured."""
        stays = list(stay_ids)
        return pseudonymize_ids(stays, self.salt) if self.salt else [f"stay_{s}" for s in stays]

    def subject_ids(self, subject_ids: Iterable[object]) -> list[str]:
        """Patient id of each subject: `pt_<hmac>`, or the raw id as text."""
        subjects = list(subject_ids)
        return pseudonymize_ids(subjects, self.salt, "pt_") if self.salt else [str(s) for s in subjects]

    def stay_keys(self, stay_ids: Iterable[int | None]) -> list[str]:
        """The stay part of a quarantine `row_key`: `episode_id=ep_...` (or `stay_id=<raw>`).

        A missing stay id stays `stay_id=NULL`, which names no one.

        >>> RunIds().stay_keys([7, None])
        ['stay_id=7', 'stay_id=NULL']
        """
        return self.id_keys(stay_ids, "stay_id")

    def id_keys(self, source_ids: Iterable[object], raw_name: str) -> list[str]:
        """The patient part of a quarantine `row_key` for any source id (stay, registry or OMOP person).

        `episode_id=<the trajectories' pseudonym>`, or `<raw_name>=<raw id>` when raw ids are kept; a
        missing id is `<raw_name>=NULL`. Ids are compared as text, integral floats as integers (a
        column with one missing id is read as floats), so the key matches the episode id.

        >>> RunIds("s" * 16).id_keys([112.0], "patient_id") == RunIds("s" * 16).id_keys(["112"], "x")
        True
        >>> RunIds().id_keys([112.0, None, "P-7"], "patient_id")
        ['patient_id=112', 'patient_id=NULL', 'patient_id=P-7']
        """
        out = []
        for value in source_ids:
            text = source_id_text(value)
            if text is None:
                out.append(f"{raw_name}=NULL")
            elif self.salt:
                out.append(f"episode_id={self.episode_ids([text])[0]}")
            else:
                out.append(f"{raw_name}={text}")
        return out


def source_id_text(value: object) -> str | None:
    """A source id as the text its pseudonym is made from: None when missing, `112` for 112.0."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # numpy scalars
        return source_id_text(value.item())
    return str(value)


def salt_change_warnings(out_dir: Path, ids: RunIds) -> list[str]:
    """A warning when `out_dir` holds an earlier run pseudonymised with another salt (or none).

    Changing only the salt moves episodes between the train, validation and test splits, so a policy
    trained on the earlier run would be evaluated partly on its own training episodes.
    """
    try:
        earlier = json.loads((Path(out_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
        before = earlier.get("extra", {}).get("id_salt_fingerprint")
    except (OSError, ValueError, AttributeError):
        return []  # no earlier run (or not ours): nothing to compare
    now = ids.fingerprint
    if before == now:
        return []
    return [
        f"The id salt changed since the earlier run in {out_dir} (fingerprint {before or 'none, raw ids'} "
        f"-> {now or 'none, raw ids'}): episode ids and the train/validation/test splits differ, so do "
        "not evaluate policies trained on the earlier run on this one."
    ]
