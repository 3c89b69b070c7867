"""CSV exports of reviews that a spreadsheet opens as text, never as formulas.

Free text written by a reviewer (or a stay id, a policy name) can start with `=`, `+`, `-`, `@`, a
tab or a carriage return; Excel, LibreOffice and Google Sheets evaluate such a cell as a formula
(`=HYPERLINK(…)` sends data to another host). Following OWASP's CSV-injection guidance
(https://owasp.org/www-community/attacks/CSV_Injection) and ASVS 5.0 requirement 1.2.10, every text
cell that starts with one of those characters is prefixed with a single quote, and NUL bytes, which
truncate or corrupt the file in many readers, are replaced by U+FFFD. Quoting of commas, quotes and
newlines follows RFC 4180 (pandas' writer). Numbers and times are written as they are.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NUL_REPLACEMENT = "\ufffd"


def neutralise_cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: NUL replaced, a formula prefix quoted.

    >>> neutralise_cell('=HYPERLINK("http://x")'), neutralise_cell("MAP ok"), neutralise_cell(3.5)
    ('\\'=HYPERLINK("http://x")', 'MAP ok', 3.5)
    """
    if not isinstance(value, str):
        return value
    value = value.replace("\x00", NUL_REPLACEMENT)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def safe_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text column neutralised (other columns unchanged)."""
    safe = frame.copy()
    for name in safe.columns:
        if safe[name].dtype == object or pd.api.types.is_string_dtype(safe[name]):
            safe[name] = safe[name].map(neutralise_cell)
    return safe


def reviews_csv(frame: pd.DataFrame) -> str:
    """The reviews as CSV text, safe to open in a spreadsheet (the app's download and `export`)."""
    return str(safe_csv_frame(frame).to_csv(index=False))
