"""Parameters of the oncology simulator, read from the cited rules file.

Every number of the myelosuppression (Friberg 2002), tumour-growth (Claret 2009), hazard,
toxicity, covariate and behaviour models lives in `rules/oncology_model_parameters.csv` with its
source and a `status` (published or assumed); nothing numeric is hidden in the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dosewise.data_schemas import ConfigError

from ..rule_tables import read_rule_csv

PARAMETER_FILE = "oncology_model_parameters.csv"
DOSE_RULES_FILE = "chemo_dose_modifications.csv"
REGIMENS_FILE = "chemo_regimens.csv"


@dataclass(frozen=True)
class OncologyParameters:
    """Typical values and between-patient log-normal spreads (`iiv_sd`) by `model.parameter`."""

    values: dict[str, float]
    iiv_sd: dict[str, float]

    def __getitem__(self, key: str) -> float:
        try:
            return self.values[key]
        except KeyError as exc:
            raise ConfigError(
                f"Oncology parameter `{key}` is not in rules/{PARAMETER_FILE}.",
                f"Add it with its source; known: {', '.join(sorted(self.values)[:12])} ...",
            ) from exc

    def sd(self, key: str) -> float:
        """The between-patient log-normal standard deviation of `key` (0 when fixed)."""
        return self.iiv_sd.get(key, 0.0)


@lru_cache(maxsize=1)
def load_oncology_parameters() -> OncologyParameters:
    """The shipped parameter table, keyed `model.parameter` (cached; the file is read-only)."""
    table = read_rule_csv(PARAMETER_FILE)
    keys = table["model"] + "." + table["parameter"]
    return OncologyParameters(
        values=dict(zip(keys, table["value"].astype(float), strict=True)),
        iiv_sd=dict(zip(keys, table["iiv_sd"].astype(float), strict=True)),
    )
