"""Tables for spreadsheets: every CSV and XLSX this package writes goes through here.

Names and codes come from municipal files, and a spreadsheet treats a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return as a formula (CSV injection, e.g.
``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0``). As OWASP's CSV-injection guidance says, such text
cells are neutralised by prefixing a single quote (``'=3+3`` shows as text in Excel and WPS); numbers
stay numbers. XLSX cells are written as strings, never formulas (openpyxl would otherwise store any
string starting with ``=`` as a formula).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "neutralise", "safe_frame", "write_csv", "write_xlsx"]

#: first characters a spreadsheet reads as the start of a formula (OWASP)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would take as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) are neutralised; other cells unchanged."""
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            out[c] = col.astype(object).map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """CSV in UTF-8 with BOM (so Excel shows Chinese text), text cells neutralised, no index; CRLF
    line ends (RFC 4180), so a cell holding a carriage return or newline is quoted rather than read as
    the start of a new row (whose first cell could then be a formula)."""
    path = Path(path)
    safe_frame(df).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


def write_xlsx(sheets: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """One workbook, one sheet per entry; text cells neutralised and typed as strings."""
    path = Path(path)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in sheets.items():
            safe_frame(df).to_excel(xw, sheet_name=name, index=False)
            for row in xw.sheets[name].iter_rows():
                for cell in row:
                    if isinstance(cell.value, str):
                        cell.data_type = "s"  # a string, never a formula
    return path
