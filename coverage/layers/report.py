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
