"""What happened to each input layer: the per-layer summary (rows read, accepted, rejected by reason,
CRS, encoding, kinds, warnings), the whole check's report, and the rejects table written for users.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from coverage.layers.vocabulary import REJECT_COLUMNS
from coverage.tables import write_csv

log = logging.getLogger(__name__)

__all__ = ["LayerReport", "LayerSummary", "write_rejects"]


@dataclass
class LayerSummary:
    """What happened to one input layer."""

    name: str
    source_file: str
    rows_read: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    crs: str = ""
    encoding: str = ""
    kinds: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    #: source type -> {outcome -> rows} over every row read: the raw type text (Amap/Baidu/Tencent type,
    #: "<typecode> <Amap type>", a municipal type word) or the OSM rule, and what it became: a kind,
    #: "(excluded: <why>)", "(unknown)", "<kind> (default_kind)" or "(missing)"
    source_types: dict[str, dict[str, int]] = field(default_factory=dict)

    def source_type_text(self) -> str:
        """The source-type -> kind table on one line, largest first:
        ``"  source type -> kind: 医疗保健服务;综合医院;卫生院 -> health_center 12; 动物医疗场所;宠物诊所 ->
        (excluded: pet clinic) 3"`` (rows read; a type that became two things is listed twice)."""
        entries = [(n, src, out) for src, d in self.source_types.items() for out, n in d.items()]
        entries.sort(key=lambda t: (-t[0], t[1], t[2]))
        return "  source type -> kind: " + "; ".join(f"{src} -> {out} {n}" for n, src, out in entries)

    def text(self) -> str:
        lines = [f"[{self.name}] {self.source_file}"]
        if self.error:
            lines.append(f"  ERROR: {self.error}")
            return "\n".join(lines)
        lines.append(f"  rows read {self.rows_read}, accepted {self.accepted}, "
                     f"rejected {sum(self.rejected.values())}; CRS {self.crs or '-'}; "
                     f"encoding {self.encoding or '-'}")
        if self.kinds:
            lines.append("  kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())))
        if self.source_types:
            lines.append(self.source_type_text())
        for reason, n in sorted(self.rejected.items(), key=lambda t: -t[1]):
            lines.append(f"  rejected {n:>5}: {reason}")
        for w in self.warnings:
            lines.append(f"  WARNING: {w}")
        return "\n".join(lines)


@dataclass
class LayerReport:
    """Result of :func:`~coverage.layers.check.check_layers`: one summary per input layer plus whole-run
    errors."""

    units: LayerSummary
    layers: list[LayerSummary]
    metric_crs: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.units.error and not any(s.error for s in self.layers)

    def text(self) -> str:
        head = f"Input layer check: {'OK' if self.ok else 'PROBLEMS FOUND'}"
        if self.metric_crs:
            head += f" (metric CRS {self.metric_crs})"
        parts = [head, self.units.text(), *(s.text() for s in self.layers)]
        parts += [f"ERROR: {e}" for e in self.errors]
        return "\n".join(parts)


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    """Write the rejects table as CSV in UTF-8 with BOM (so Excel shows the Chinese text), through the
    formula-safe writer (:mod:`coverage.tables`: the original values are municipal text)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rejects.reindex(columns=list(REJECT_COLUMNS)), path)
    log.info("Wrote %d rejected rows to %s", len(rejects), path)
    return path
