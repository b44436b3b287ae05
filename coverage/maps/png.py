"""The static overview PNG (matplotlib): units coloured by the lead service's headline coverage share."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from coverage.maps.build import read_build
from coverage.maps.style import NODATA, SHARE_BREAKS, SHARE_COLORS, fmt

__all__ = ["CJK_FONT_NAMES", "find_cjk_font", "write_overview_png"]

log = logging.getLogger(__name__)

CJK_FONT_NAMES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                  "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei",
                  "PingFang SC")


def find_cjk_font() -> str | None:
    """Name of an installed font that renders Chinese (matplotlib's list, then ``fc-list :lang=zh``)."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for n in CJK_FONT_NAMES:
        if n in names:
            return n
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], check=False, capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        path = line.split(":")[0].strip()
        if not path:
            continue
        try:
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
    return None


def write_overview_png(build_dir: str | Path, out_png: str | Path, *, region_title: str = "",
                       dpi: int = 120) -> Path:
    """Static overview: units coloured by the lead service's headline share (elderly 15 minutes in
    the built-in registry), labelled.

    Labels are unit names when a CJK font is installed (``fc-list :lang=zh``), else unit codes
    (no missing-glyph warnings). Returns ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    b = read_build(build_dir)
    font = find_cjk_font()
    u = b.units
    s = b.lead
    col = b.headline(s)[1]
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    rc: dict[str, Any] = ({"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]}
                          if font else {})
    with plt.rc_context(rc):  # type: ignore[arg-type]  # stubs want Literal rc keys
        fig, ax = plt.subplots(figsize=(9, 8))
        cmap = ListedColormap(list(SHARE_COLORS))
        norm = BoundaryNorm([*SHARE_BREAKS, 1.0 + 1e-9], cmap.N)
        has = u[col].astype(float).notna()
        if has.any():
            u[has].plot(ax=ax, column=col, cmap=cmap, norm=norm, edgecolor="#333", linewidth=0.8)
        if (~has).any():
            u[~has].plot(ax=ax, color=NODATA, edgecolor="#333", linewidth=0.8)
        for _, r in u.iterrows():
            p = r.geometry.representative_point()
            name = f"{r['unit_name'] if font else r['unit_code']}\n{fmt(r[col], pct=True)}"
            ax.annotate(name, (p.x, p.y), ha="center", va="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})
        cb = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=norm), ax=ax, shrink=0.7)
        cb.set_ticks([*SHARE_BREAKS, 1.0])
        cb.set_ticklabels([f"{x:.0%}" for x in (*SHARE_BREAKS, 1.0)])
        title = region_title or b.region_title()
        if not font and not title.isascii():
            title = str(b.run_info.get("region", ""))
        zh = b.share_label(s)
        en = f"{s.label_en} coverage ({col})"
        cb.set_label(zh if font else en)
        ax.set_title((f"{title} — {zh}" if font else f"{title} - {en}").strip(" -—"))
        ax.set_axis_off()
        if b.not_assessed:  # the figure shows one service: say which others the data could not assess
            names = ", ".join((b.services[k].label_zh if font else b.services[k].label_en)
                              for k in b.not_assessed if k in b.services)
            label = ("未评估 (not assessed): " if font else "not assessed: ") + names
            fig.text(0.01, 0.01, label, fontsize=9, color="#555555")
        fig.savefig(out_png, dpi=dpi, bbox_inches="tight", facecolor="white")
        plt.close(fig)
    log.info("Wrote overview PNG %s (CJK font: %s)", out_png, font or "none, labels are unit codes")
    return out_png
