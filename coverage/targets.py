"""Targets with their year and source: the numbers a region is held to, by the document that sets them.

The standards engine checks two region-wide targets that differ by plan: childcare slots per 1000
residents and the nursing-type share of elderly beds. A region config selects one set with
``[standards] targets = "<id>"`` (or gives the two numbers itself); the standards rows then name the
set, its year and its document, so a figure in ``standards.csv`` always says which rule it used.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TARGET_SETS", "TargetSet", "target_source"]


@dataclass(frozen=True)
class TargetSet:
    """One plan's targets for a target year."""

    id: str
    label_zh: str
    year: int
    childcare_slots_per_1000: float
    nursing_bed_share: float
    source: str


TARGET_SETS: dict[str, TargetSet] = {t.id: t for t in [
    TargetSet("wanyuan_2025", "万源市一老一小实施方案", 2025, 4.5, 0.55,
              "万源市实施方案 总体要求: 每千人口托位数4.5个, 护理型床位占比55% [seeds/002]"),
    TargetSet("chengdu_2025", "成都市一老一小整体解决方案", 2025, 4.74, 0.60,
              "成都市一老一小整体解决方案 表1 #12 护理型床位占比60%, 表1/表2 每千人口托位数4.74 [seeds/003]"),
    TargetSet("national_2025", "国家“十四五”规划目标", 2025, 4.5, 0.55,
              "“十四五”国家规划 2025年目标: 每千人口托位数4.5个, 养老机构护理型床位占比55% (the national "
              "figures the 万源 plan restates [seeds/002]; the national plan texts are not among seeds/)"),
]}


def target_source(targets: str, base_source: str) -> str:
    """The ``source`` of a target-checking standards row: the selected set's document and year, else the
    standard's own sources (the config gave the number itself)."""
    t = TARGET_SETS.get(targets)
    if t is None:
        return base_source
    return f"{t.label_zh} ({t.year}年目标, [standards] targets = \"{t.id}\"): {t.source}"
