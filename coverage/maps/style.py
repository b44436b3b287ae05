"""Colours, class breaks, legends and number formatting of the pages (no I/O, no folium).

Shares go red (low) -> green (high), counts light -> dark. A service's isochrone bands are shades of
the service's own ``color`` (:func:`band_colors`), its gaps are drawn in its ``gap_color``; facility
kinds take the ``color`` of the build's kind registry (:func:`kind_color`), so a kind or service added
in a region config gets colours with no change here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coverage.services import Kind

__all__ = [
    "COUNT_COLORS", "FAIL_BREAKS", "FAIL_COLORS", "NODATA", "SHARE_BREAKS", "SHARE_COLORS", "SLOT_BREAKS",
    "SLOT_COLORS", "band_colors", "bin_color", "count_breaks", "fmt", "fmt_standard", "kind_color", "legend",
    "num", "safe_color", "tidy_text",
]

SHARE_COLORS = ("#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850")
SHARE_BREAKS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
SLOT_COLORS = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
SLOT_BREAKS = (0.0, 2.0, 4.5, 8.0, 10.0)
FAIL_COLORS = ("#1a9850", "#fee08b", "#fc8d59", "#d73027", "#7f0000")
FAIL_BREAKS = (0.0, 1.0, 2.0, 3.0, 5.0)
COUNT_COLORS = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
NODATA = "#bdbdbd"
#: colour of a facility whose kind is not in the build's registry
UNKNOWN_KIND = "#777777"

_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


def safe_color(color: Any, default: str = NODATA) -> str:
    """``color`` when it is a ``#rgb``/``#rrggbb`` literal (safe in a style attribute), else ``default``."""
    return str(color) if _COLOR.fullmatch(str(color)) else default


def _rgb(color: str) -> tuple[float, float, float]:
    h = safe_color(color, "#3182bd")[1:]
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def band_colors(color: str, thresholds: Sequence[float]) -> dict[float, str]:
    """Band colour per threshold: the service colour for the smallest (nearest) band, mixed towards
    white for larger ones (the largest of several is 60 % white)."""
    ts = sorted(thresholds)
    r, g, b = _rgb(color)
    out = {}
    for i, t in enumerate(ts):
        w = 0.6 * i / (len(ts) - 1) if len(ts) > 1 else 0.0
        out[float(t)] = _hex((r + (1 - r) * w, g + (1 - g) * w, b + (1 - b) * w))
    return out


def kind_color(kinds: Mapping[str, Kind], kind: str) -> str:
    k = kinds.get(kind)
    return safe_color(k.color, UNKNOWN_KIND) if k is not None else UNKNOWN_KIND


def fmt(v: Any, *, digits: int | None = None, unit: str = "", pct: bool = False) -> str:
    """Display text of a value: shares as percent (1 decimal), numbers with thousands separators.

    ``digits`` defaults to 1 for ``pct`` and 0 otherwise; missing/non-finite values show as "—".
    """
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        return "—"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        d = (1 if pct else 0) if digits is None else digits
        x = float(v) * (100.0 if pct else 1.0)
        s = f"{x:,.{d}f}"
        return s + ("%" if pct else (f" {unit}" if unit else ""))
    return str(v)


def num(v: Any) -> float | None:
    """A finite float from a CSV cell ("", "nan" and text give None)."""
    if isinstance(v, bool):
        return None
    try:
        x = float(str(v).replace(",", "").strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


#: standards.csv value/required display per ``STANDARDS[...].unit`` (format keywords of :func:`fmt`)
STD_UNIT_FMT: dict[str, dict[str, Any]] = {
    "share 0-1": {"pct": True},
    "m²/resident": {"digits": 2, "unit": "m²/人"},
    "slots/1000": {"digits": 1, "unit": "托位/千人"},
    "beds/1000 60+": {"digits": 1, "unit": "床/千名老人"},
    "m²": {"digits": 0, "unit": "m²"},
    "count": {"digits": 0, "unit": "个"},
}
_LONG_FLOAT = re.compile(r"\d+\.\d{3,}")


def fmt_standard(v: Any, std_unit: str) -> str:
    """A standards.csv ``value``/``required`` cell in the standard's unit (``STANDARDS[id].unit``).

    Shares show as "72.8%", areas and counts with thousands separators, rates with 1-2 decimals;
    unknown units get 0 decimals for whole numbers, else 2. Non-numeric text is kept.
    """
    x = num(v)
    if x is None:
        t = str(v).strip() if v is not None else ""
        return "—" if t.lower() in ("", "nan", "none", "<na>") else t
    kw = STD_UNIT_FMT.get(std_unit)
    if kw is None:
        kw = {"digits": 0 if float(x).is_integer() else 2}
    return fmt(x, **kw)


def tidy_text(s: Any) -> str:
    """Free text (e.g. ``shortfall``) with long raw floats rounded to 2 decimals."""
    t = "" if s is None else str(s)
    if t.lower() in ("nan", "none", "<na>"):
        return ""
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group(0)):,.2f}", t)


def bin_color(v: float, breaks: Sequence[float], colors: Sequence[str]) -> str:
    if v is None or not math.isfinite(v):
        return NODATA
    i = int(np.searchsorted(np.asarray(breaks), v, side="right")) - 1
    return colors[max(0, min(i, len(colors) - 1))]


def legend(title: str, breaks: Sequence[float], colors: Sequence[str], *, pct: bool = False,
           nodata: bool = True, digits: int = 0) -> dict[str, Any]:
    """A legend ``{"title", "items": [{"color", "label"}]}`` of classed colours (``≥ lo – < hi``)."""
    def f(x: float) -> str:
        return fmt(x, pct=True, digits=0) if pct else fmt(x, digits=digits)

    items = []
    for i, c in enumerate(colors):
        hi = breaks[i + 1] if i + 1 < len(breaks) else None
        items.append({"color": c, "label": f"≥ {f(breaks[i])}" + (f" – < {f(hi)}" if hi is not None else "")})
    if nodata:
        items.append({"color": NODATA, "label": "无数据 / no data"})
    return {"title": title, "items": items}


#: title of the low-confidence overlay and of the unit-page banner
LOW_CONFIDENCE_TITLE = "低可信 / low confidence"

#: label of a service the build could not assess (no facility data, or assess = false)
NOT_ASSESSED_LABEL = "未评估 / not assessed"


def not_assessed_legend(title: str, reason: str) -> dict[str, Any]:
    """The legend of a not-assessed service's layer: one grey item saying so, and why."""
    return {"title": title, "items": [{"color": NODATA, "label": NOT_ASSESSED_LABEL}], "note": reason}


def count_breaks(values: np.ndarray) -> list[float]:
    """Up to five class breaks of positive counts (quantiles, whole numbers from 1 up)."""
    v = values[np.isfinite(values) & (values > 0)]
    if not len(v):
        return [0.0, 1.0, 2.0, 3.0, 4.0]
    qs = np.quantile(v, [0, 0.2, 0.4, 0.6, 0.8])
    out: list[float] = []
    for q in qs:
        r = float(np.floor(q)) if q >= 1 else round(float(q), 2)
        if not out or r > out[-1]:
            out.append(r)
    return out
