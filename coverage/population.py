"""Population overlay: raster (or census) persons per cell, assigned to 街道/乡镇 and 社区/村.

Two sources, one output table (the **cells** contract of docs/ARCHITECTURE.md):

* **Raster** (``population.total``, e.g. WorldPop people-per-pixel): the raster is read WINDOWED to the
  study area's bounds (rounded out to whole cells; a national raster is never read whole), in bands of
  ``population.read_block_rows`` rows of the window's width: only one band's arrays are held at a time,
  and every per-cell decision is the one the whole window would give (the overlays look at a cell's
  neighbours through a one-row margin, and burn each band in the window's pixel space); the checks
  below and the conservation are made once, from the per-band figures. Vectors are
  moved to the raster's CRS, counts are never resampled. Nodata and NaN count as 0 ("no people").
  Inputs that would silently change the population are errors (:class:`PopulationError`): negative
  cells other than the declared nodata, a raster with no person in the study area, a raster whose CRS
  cannot be right for its coordinates or that misses the study area, an age raster holding more
  persons than the total raster.
* **Census** (``population.census_csv``, e.g. 七普 totals per 街道/乡镇): each unit's totals are spread
  over a regular ``census_cell_m`` grid in the metric CRS by residential road length. The result is an
  ESTIMATE and is labelled so in :attr:`Cells.method`.

Assignment rule. A cell whose square lies fully inside one unit goes to it with ``weight`` 1. A cell
cut by unit boundaries is split among the units its square overlaps by area fraction, RENORMALISED
over those units: a coastal or edge cell whose centre lies outside every unit still counts in full.
A cell that only touches the study area along an edge or at a corner (zero overlap area) is excluded.
Communities are split the same way inside each unit piece (``community_code`` "" where the unit has no
community covering the cell).

Population outside every unit. The raster WINDOW is every raster cell touching the bounding box of the
units (in the raster's CRS), widened by ``population.attach_outside_m`` when that is set, rounded out to
whole cells and clipped to the raster: it is exactly the part of the raster that is read. A populated
cell of the window that overlaps no unit (sea beside a coastline drawn inland, a neighbouring region
inside the bounding box, a gap between units) is OUTSIDE: it is measured, never dropped silently, in
:attr:`Cells.outside` (persons, cells, and per nearest unit the cells, persons and distance range).
With ``population.attach_outside_m`` > 0, an outside cell whose centre lies within that distance of a
unit polygon (metres, in the metric CRS) joins its nearest unit with ``weight`` 1 and the nearest
community of that unit, and is reported as attached. Census-spread population has no outside
population by construction (reported as 0 with a note).

Conservation is checked on every run: the persons of all pieces plus the persons outside every unit
must equal the raster total of the window (or the census total) within
``population.conservation_tolerance``; otherwise :class:`PopulationError` is raised. The outside part is
measured against the union of units, independently of the per-unit split.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS, Transformer

from coverage.config import PopulationConfig
from coverage.coords import require_projected
from coverage.errors import PopulationError

log = logging.getLogger(__name__)

__all__ = [
    "CELL_COLUMNS",
    "OUTSIDE_COLUMNS",
    "Cells",
    "OutsideSummary",
    "PopulationError",
    "build_cells",
    "cell_polygons",
    "read_unit_csv",
]

#: Columns of the cells table, in order (docs/ARCHITECTURE.md), plus lon/lat of the centre.
CELL_COLUMNS = ("cell_id", "row", "col", "unit_code", "community_code", "weight", "pop_total",
                "pop_60plus", "pop_0to3", "x", "y", "lon", "lat", "geometry")

METHOD_RASTER = "raster"
METHOD_CENSUS = "census spread by residential road length — ESTIMATE"
#: OSM highway classes whose length within a cell is the census spreading weight.
RESIDENTIAL_HIGHWAYS = ("residential", "living_street", "unclassified", "tertiary")
#: overlaps smaller than this fraction of a cell's area are floating-point noise (shared edges)
_MIN_FRAC = 1e-9
#: tolerance (in cells) when rounding the window out to whole cells
_SNAP_CELLS = 1e-6
_TILE_CELLS = 64


#: columns of :attr:`OutsideSummary.by_nearest_unit`
OUTSIDE_COLUMNS = ("unit_code", "cells", "people", "distance_min_m", "distance_max_m", "attached_cells",
                   "attached_people")
NOTE_CENSUS_OUTSIDE = ("census totals are spread over the units only: no population lies outside every "
                       "unit by construction")


def _empty_by_unit() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c == "unit_code" else
                                      ("int64" if c.endswith("cells") else float)) for c in OUTSIDE_COLUMNS})


@dataclass(frozen=True)
class OutsideSummary:
    """Population of the raster window lying in cells that overlap no unit (sea, a neighbour, a gap).

    Attributes
    ----------
    people : float
        Persons (``population.total``) in the window's cells wholly outside every unit and NOT attached.
    cells : int
        Number of those cells holding people.
    share_of_raster_window : float
        ``people`` / ``window_people`` (0..1).
    window_people : float
        Persons in the whole raster window (see :func:`build_cells`; the census total in census mode).
    attach_m : float
        ``population.attach_outside_m`` in force (0 = off).
    attached_cells, attached_people : int, float
        Cells wholly outside every unit whose centre lies within ``attach_m`` of a unit: counted in the
        nearest unit (weight 1), so NOT in ``people``.
    by_nearest_unit : DataFrame
        One row per unit that is the nearest unit of an outside or attached cell, most ``people`` first:
        ``unit_code``; ``cells``, ``people`` (still outside); ``distance_min_m``, ``distance_max_m``
        (metres from the cell centres to the unit polygon, metric CRS; NaN when none stays outside);
        ``attached_cells``, ``attached_people``.
    note : str
        How the figures were measured (or why there are none).
    """

    people: float = 0.0
    cells: int = 0
    share_of_raster_window: float = 0.0
    window_people: float = 0.0
    attach_m: float = 0.0
    attached_cells: int = 0
    attached_people: float = 0.0
    by_nearest_unit: pd.DataFrame = field(default_factory=_empty_by_unit)
    note: str = ""

    def text(self, *, max_units: int = 5) -> str:
        """One line for a person, e.g. ``"outside every unit: 23,437 persons in 2,560 cells (2.7 % of the
        raster window's 869,595); nearest unit KM-G 12,001 in 1,400 cells at 46-480 m, ...; attached
        within 500 m: 20,000 persons in 2,000 cells"``."""
        if self.cells == 0 and self.attached_cells == 0:
            head = "outside every unit: 0 persons"
            return f"{head} ({self.note})" if self.note else head
        parts = [f"outside every unit: {self.people:,.0f} persons in {self.cells:,d} cells "
                 f"({self.share_of_raster_window:.1%} of the raster window's {self.window_people:,.0f})"]
        rows = self.by_nearest_unit[self.by_nearest_unit["cells"] > 0]
        near = [f"{r.unit_code} {r.people:,.0f} in {r.cells:,d} cells at {r.distance_min_m:,.0f}-"
                f"{r.distance_max_m:,.0f} m" for r in rows.head(max_units).itertuples()]
        if len(rows) > max_units:
            near.append(f"{len(rows) - max_units} more unit(s)")
        if near:
            parts.append("nearest unit " + ", ".join(near))
        if self.attach_m > 0:
            parts.append(f"attached within {self.attach_m:,.0f} m: {self.attached_people:,.0f} persons in "
                         f"{self.attached_cells:,d} cells")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (run_info.json): the scalars and ``by_nearest_unit`` as a list of records."""
        recs = self.by_nearest_unit.astype(object).where(self.by_nearest_unit.notna(), None)
        return {"people": float(self.people), "cells": int(self.cells),
                "share_of_raster_window": float(self.share_of_raster_window),
                "window_people": float(self.window_people), "attach_m": float(self.attach_m),
                "attached_cells": int(self.attached_cells), "attached_people": float(self.attached_people),
                "by_nearest_unit": recs.to_dict(orient="records"), "note": self.note}


@dataclass(frozen=True)
class Cells:
    """Result of :func:`build_cells`.

    Attributes
    ----------
    cells : GeoDataFrame
        One row per populated cell piece, in the metric CRS; columns :data:`CELL_COLUMNS`
        (``pop_*`` in persons, ``x``/``y`` metres, ``lon``/``lat`` degrees of the cell centre).
    transform : Affine
        Transform of the study window (raster mode) or of the census grid (census mode).
    raster_crs : str
        CRS of ``transform`` (the raster's CRS, or the metric CRS for the census grid).
    shape : tuple of int
        (rows, cols) of the window / grid; ``cell_id = row * cols + col``.
    conservation : dict
        ``window_total`` (persons in the raster window, or the census total), ``units_total`` (sum over
        pieces, attached cells included), ``outside_total`` (persons in cells wholly outside every unit,
        not attached), ``attached_total``, ``raster_total_touching`` (persons in every cell overlapping
        the units; the census total in census mode) and ``rel_error`` of the identity
        ``units_total + outside_total == window_total``.
    method : str
        ``"raster"`` or ``"census spread by residential road length — ESTIMATE"``.
    age_source : str
        ``"age rasters"``, ``"census ratios"``, ``"census counts"`` or a mix naming each group.
    outside : OutsideSummary
        Population of the raster window outside every unit (people, cells, by nearest unit) and the
        cells attached to a unit by ``population.attach_outside_m``; zero with a note in census mode.
    """

    cells: gpd.GeoDataFrame
    transform: Affine
    raster_crs: str
    shape: tuple[int, int]
    conservation: dict[str, float] = field(default_factory=dict)
    method: str = METHOD_RASTER
    age_source: str = "age rasters"
    outside: OutsideSummary = field(default_factory=OutsideSummary)


# --------------------------------------------------------------------------------------------
# Geometry core: cells of a grid x polygons -> (cell, polygon, area fraction)
# --------------------------------------------------------------------------------------------


def _cell_boxes(rows: np.ndarray, cols: np.ndarray, transform: Affine) -> np.ndarray:
    x0 = transform.c + cols * transform.a
    x1 = x0 + transform.a
    y0 = transform.f + rows * transform.e
    y1 = y0 + transform.e
    return shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))


def _tiles(geoms: Sequence[Any], transform: Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cut each polygon into grid-aligned tiles so that box intersections stay cheap."""
    inv = ~transform
    pieces: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    nrows, ncols = shape
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        minx, miny, maxx, maxy = g.bounds
        corners = ((minx, miny), (maxx, maxy), (minx, maxy), (maxx, miny))
        cs, rs = zip(*(inv @ (x, y) for x, y in corners), strict=True)
        c0, c1 = max(0, math.floor(min(cs))), min(ncols, math.ceil(max(cs)))
        r0, r1 = max(0, math.floor(min(rs))), min(nrows, math.ceil(max(rs)))
        if c0 >= c1 or r0 >= r1:
            continue
        tr = np.arange(r0, r1, _TILE_CELLS)
        tc = np.arange(c0, c1, _TILE_CELLS)
        tr_g, tc_g = (g.ravel() for g in np.meshgrid(tr, tc, indexing="ij"))
        tr_e = np.minimum(tr_g + _TILE_CELLS, r1)
        tc_e = np.minimum(tc_g + _TILE_CELLS, c1)
        xa = transform.c + tc_g * transform.a
        xb = transform.c + tc_e * transform.a
        ya = transform.f + tr_g * transform.e
        yb = transform.f + tr_e * transform.e
        tboxes = shapely.box(np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb))
        parts = np.array([g]) if len(tboxes) == 1 else shapely.intersection(g, tboxes)
        keep = ~shapely.is_empty(parts) & (shapely.area(parts) > 0)
        pieces.append(parts[keep])
        owners.append(np.full(int(keep.sum()), i, dtype=np.int64))
    if not pieces:
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    return np.concatenate(pieces), np.concatenate(owners)


def _pixel_coords(geoms: Sequence[Any], transform: Affine) -> list[Any]:
    """``geoms`` in the grid's pixel space (x = column, y = -row), computed as GDAL's rasteriser does.

    GDAL maps a coordinate to (column, row) with the inverse geotransform ``-c/a + x/a``,
    ``-f/e + y/e`` (north-up case of ``GDALInvGeoTransform``); doing the same here once, and giving GDAL
    the pixel-space geometry with a pure translation by a whole number of rows per band
    (:func:`_burn`), burns every band exactly as the whole window would have been burnt: the translation
    by an integer is exact near the band, so GDAL decides each cell on the same numbers. The row is
    negated so that the pixel-space transform stays north-up.
    """
    if transform.b != 0 or transform.d != 0:  # rotated grids (none known among population rasters)
        inv = ~transform

        def to_px(xy: np.ndarray) -> np.ndarray:
            col = inv.c + xy[:, 0] * inv.a + xy[:, 1] * inv.b
            row = inv.f + xy[:, 0] * inv.d + xy[:, 1] * inv.e
            return np.column_stack([col, -row])
    else:
        inv_c, inv_a = -transform.c / transform.a, 1.0 / transform.a
        inv_f, inv_e = -transform.f / transform.e, 1.0 / transform.e

        def to_px(xy: np.ndarray) -> np.ndarray:
            return np.column_stack([inv_c + xy[:, 0] * inv_a, -(inv_f + xy[:, 1] * inv_e)])
    return [shapely.transform(g, to_px) for g in geoms]


def _burn(shapes: Sequence[tuple[Any, int]], *, rows: tuple[int, int], ncols: int, all_touched: bool,
          dtype: str) -> np.ndarray:
    """Rasterise pixel-space ``shapes`` (:func:`_pixel_coords`) into the grid rows ``rows[0]:rows[1]``."""
    from rasterio.features import rasterize

    r0, r1 = rows
    if not shapes or r1 <= r0 or ncols == 0:
        return np.zeros((max(r1 - r0, 0), ncols), dtype=dtype)
    return rasterize(shapes, out_shape=(r1 - r0, ncols), transform=Affine(1.0, 0.0, 0.0, 0.0, -1.0, -r0),
                     fill=0, all_touched=all_touched, dtype=dtype)


def _burn_dilated(shapes: Sequence[tuple[Any, int]], *, row0: int, nrows: int, shape: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(touched, near) of the rows ``row0:row0+nrows`` of a grid of ``shape``: cells touched (GDAL
    ``all_touched``) by ``shapes``, and those or their 8 neighbours, exactly as for the whole grid: the
    band is burnt with one row of margin above and below (none beyond the grid, as for the whole grid)."""
    from scipy.ndimage import binary_dilation

    m0, m1 = max(row0 - 1, 0), min(row0 + nrows + 1, shape[0])
    touched = _burn(shapes, rows=(m0, m1), ncols=shape[1], all_touched=True, dtype="uint8").astype(bool)
    near = binary_dilation(touched, structure=np.ones((3, 3), bool))
    return touched[row0 - m0:row0 - m0 + nrows], near[row0 - m0:row0 - m0 + nrows]


@dataclass(frozen=True)
class _GridPolygons:
    """Polygons prepared once for :func:`_overlay_rows` on a grid read in row bands.

    ``ids``: the polygons in pixel space with their index + 1 (centre rule); ``rims``: their boundaries
    in pixel space; ``tiles``/``owners``/``tree``: grid-aligned tiles of the polygons (in the grid's CRS)
    for the exact intersections of the boundary cells.
    """

    transform: Affine
    shape: tuple[int, int]
    ids: list[tuple[Any, int]]
    rims: list[tuple[Any, int]]
    tiles: np.ndarray
    owners: np.ndarray
    tree: shapely.STRtree


def _grid_polygons(geoms: Sequence[Any], *, transform: Affine, shape: tuple[int, int]) -> _GridPolygons:
    valid = [(g, i + 1) for i, g in enumerate(geoms) if g is not None and not g.is_empty]
    px = _pixel_coords([g for g, _ in valid], transform)
    tiles, owners = _tiles(list(geoms), transform, shape) if valid else (np.array([], dtype=object),
                                                                          np.array([], dtype=np.int64))
    return _GridPolygons(transform=transform, shape=shape, ids=[(g, v) for g, (_, v) in zip(px, valid,
                                                                                            strict=True)],
                         rims=[(shapely.boundary(g), 1) for g in px], tiles=tiles, owners=owners,
                         tree=shapely.STRtree(tiles))


def _overlay_rows(grid: _GridPolygons, cells_mask: np.ndarray, *, row0: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlap of grid cells (where ``cells_mask``, the rows ``row0:row0+len(cells_mask)`` of the grid)
    with the polygons of ``grid``.

    Cells not crossed by any polygon boundary are resolved by rasterising polygon ids at cell
    centres (such a cell lies wholly inside or wholly outside each polygon); the rest (boundary cells,
    found by an ``all_touched`` rasterisation of the boundaries dilated by one cell) are intersected
    exactly with grid-aligned tiles of the polygons. Each cell's answer depends only on the cell and
    its 8 neighbours (burnt with a one-row margin), so any band of rows gives the rows' answers of the
    whole grid.

    Returns
    -------
    flat, geom, frac : ndarray
        Flat cell index of the WHOLE grid (``row * cols + col``), polygon index, and the area of the
        overlap as a fraction of the cell's area (1 for interior cells), for every overlap larger than
        1e-9.
    """
    transform = grid.transform
    ncols = grid.shape[1]
    nrows = cells_mask.shape[0]
    empty = (np.array([], np.int64), np.array([], np.int64), np.array([], float))
    if not grid.ids or nrows == 0 or ncols == 0:
        return empty
    ids = _burn(grid.ids, rows=(row0, row0 + nrows), ncols=ncols, all_touched=False, dtype="int32")
    _, bnd = _burn_dilated(grid.rims, row0=row0, nrows=nrows, shape=grid.shape)
    interior = cells_mask & ~bnd & (ids > 0)
    r_i, c_i = np.nonzero(interior)
    flat_i = (r_i.astype(np.int64) + row0) * ncols + c_i
    geom_i = ids[r_i, c_i].astype(np.int64) - 1

    r_b, c_b = np.nonzero(cells_mask & bnd)
    if len(r_b):
        r_b = r_b.astype(np.int64) + row0
        boxes = _cell_boxes(r_b, c_b, transform)
        q_box, q_piece = grid.tree.query(boxes, predicate="intersects")
        area = shapely.area(shapely.intersection(boxes[q_box], grid.tiles[q_piece]))
        frac = area / abs(transform.a * transform.e - transform.b * transform.d)
        flat_b = r_b[q_box] * ncols + c_b[q_box]
        geom_b = grid.owners[q_piece]
        # a polygon may reach one cell through several tiles only if tiles are not grid aligned; sum anyway
        group = pd.DataFrame({"flat": flat_b, "geom": geom_b}).groupby(["flat", "geom"], sort=False).ngroup()
        _, first = np.unique(group.to_numpy(), return_index=True)
        frac_b = _sum_by(group.to_numpy(), frac)[first]
        keep = frac_b > _MIN_FRAC
        flat_b, geom_b, frac_b = flat_b[first][keep], geom_b[first][keep], frac_b[keep]
    else:
        flat_b, geom_b, frac_b = empty
    return (np.concatenate([flat_i, flat_b]), np.concatenate([geom_i, geom_b]),
            np.concatenate([np.ones(len(flat_i)), np.minimum(frac_b, 1.0)]))


def _overlay(geoms: Sequence[Any], *, transform: Affine, shape: tuple[int, int],
             cells_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_overlay_rows` of the whole grid (``cells_mask`` of ``shape``)."""
    return _overlay_rows(_grid_polygons(geoms, transform=transform, shape=shape), cells_mask, row0=0)


def _sum_by(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the sum of ``values`` over the rows of its ``group`` (ids 0..n-1), added in row order.

    Each group's sum depends only on its own rows (``np.bincount``), never on the other rows of the
    table: a cell's weights are the same whichever band of the raster it was read with. (pandas'
    grouped ``transform("sum")`` is not: its compensated sum of one group changed in the last bit with
    the rows of other groups interleaved.)
    """
    return np.bincount(group, weights=values)[group]


def _renormalise(flat: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Weights per piece: area fraction divided by the sum over the pieces of the same cell."""
    if len(flat) == 0:
        return np.array([], float)
    _, inv = np.unique(flat, return_inverse=True)
    tot = np.bincount(inv, weights=frac)
    return frac / tot[inv]


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _check_metric_crs(metric_crs: str) -> CRS:
    return require_projected(metric_crs, what="population metric_crs")


def _check_layer(gdf: gpd.GeoDataFrame, name: str, columns: Sequence[str]) -> list[str]:
    problems = []
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        problems.append(f"{name}: missing column(s) {', '.join(missing)} "
                        f"(have {', '.join(map(str, gdf.columns))})")
    if gdf.crs is None:
        problems.append(f"{name}: no CRS; set units.crs in coverage.toml (e.g. 'EPSG:4490')")
    if "unit_code" in gdf.columns and name == "units" and gdf["unit_code"].astype(str).duplicated().any():
        dup = sorted(set(gdf.loc[gdf["unit_code"].astype(str).duplicated(), "unit_code"].astype(str)))
        problems.append(f"units: duplicate unit_code {', '.join(dup[:10])}")
    no_geom = gdf.geometry.isna() | gdf.geometry.is_empty
    if len(gdf) and no_geom.any():
        problems.append(f"{name}: {int(no_geom.sum())} row(s) without geometry")
    return problems


def read_unit_csv(path: Path, unit_codes: Sequence[str], columns: Sequence[str], *, what: str,
                  key: str, complete: bool = True) -> pd.DataFrame:
    """Read a per-unit CSV (unit_code + numeric columns, indexed by unit_code); every problem raised once.
    ``key`` is the config key naming the file; ``complete=False`` lets units be missing from it."""
    if not Path(path).is_file():
        raise PopulationError(f"{path}: {what} not found ({key} in coverage.toml).")
    try:
        df = pd.read_csv(path, dtype={"unit_code": str}, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PopulationError(f"{path}: cannot read {what} as a UTF-8 CSV: {exc}") from None
    problems = []
    need = ["unit_code", *columns]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise PopulationError(f"{path}: {what} lacks column(s) {', '.join(missing)} "
                              f"(needs {', '.join(need)}; has {', '.join(map(str, df.columns))}). Fix: "
                              f"rename the CSV's columns (first row) or point {key} at the right file.")
    df["unit_code"] = df["unit_code"].astype(str).str.strip()
    dup = sorted(set(df.loc[df["unit_code"].duplicated(), "unit_code"]))
    if dup:
        problems.append(f"duplicate unit_code {', '.join(dup)}")
    for c in columns:
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = df.loc[vals.isna() | (vals < 0), "unit_code"].tolist()
        if c.startswith("share_"):
            bad += df.loc[vals > 1, "unit_code"].tolist()
        if bad:
            allowed = "a share between 0 and 1" if c.startswith("share_") else "a number >= 0"
            problems.append(f"column {c}: bad value for unit(s) {', '.join(map(str, bad[:10]))} "
                            f"(expected {allowed})")
        df[c] = vals
    codes = set(unit_codes)
    in_csv = set(df["unit_code"])
    if codes and in_csv and not codes & in_csv:
        raise PopulationError(
            f"{path}: none of the {len(in_csv)} unit_code(s) of the {what} matches a unit of the units layer "
            f"(CSV: {', '.join(sorted(in_csv)[:5])}{' ...' if len(in_csv) > 5 else ''}; units layer: "
            f"{', '.join(sorted(codes)[:5])}{' ...' if len(codes) > 5 else ''}). Fix: give the CSV the codes "
            f"of the units layer's code field (as text: spreadsheets drop leading zeros and turn long codes "
            f"into 1.1e+11), or point {key} at the CSV of this region.")
    not_in_layer = sorted(in_csv - codes)
    not_in_csv = sorted(codes - in_csv)
    if not_in_layer:
        problems.append(f"unit_code(s) not in the units layer: {', '.join(not_in_layer)}")
    if not_in_csv and complete:
        problems.append(f"units of the layer missing from the CSV: {', '.join(not_in_csv)}")
    if problems:
        rows = "exactly one row" if complete else "at most one row"
        raise PopulationError(f"{path}: {len(problems)} problem(s) in the {what} ({key}):\n  "
                              + "\n  ".join(problems)
                              + f"\nFix the CSV so that it has {rows} per unit_code of the units layer.")
    return df.set_index("unit_code")


def _raster_grids(pop_cfg: PopulationConfig) -> dict[str, Path]:
    """The rasters in use, checked to exist and to share one grid."""
    import rasterio

    given = {"total": pop_cfg.total, "age_60plus": pop_cfg.age_60plus, "age_0to3": pop_cfg.age_0to3}
    paths = {k: Path(v) for k, v in given.items() if v is not None}
    missing = [f"population.{k} = {p}" for k, p in paths.items() if not p.is_file()]
    if missing:
        raise PopulationError("population raster(s) not found: " + "; ".join(missing)
                              + ". Fix the paths in coverage.toml (relative to its folder).")
    grids = {}
    bounds: dict[str, tuple[float, ...]] = {}
    for k, p in paths.items():
        try:
            with rasterio.open(p) as src:
                grids[k] = (src.crs, src.transform, src.width, src.height)
                bounds[k] = tuple(src.bounds)
        except rasterio.errors.RasterioIOError as exc:
            raise PopulationError(f"{p}: cannot open population.{k} as a raster: {exc}. Give a GeoTIFF of "
                                  f"persons per cell (if the file is cut short, download or export it "
                                  f"again)") from None
    if grids["total"][0] is None:
        raise PopulationError(f"{paths['total']}: the raster has no CRS; WorldPop rasters are EPSG:4326 "
                              f"(assign one with gdal_edit.py -a_srs EPSG:4326).")
    implausible = [m for k, g in grids.items()
                   if g[0] is not None and (m := _crs_mismatch(paths[k], k, g[0], bounds[k], g[1]))]
    if implausible:
        raise PopulationError("\n".join(implausible))
    ref = grids["total"]
    diff = []
    for k, g in grids.items():
        if k == "total":
            continue
        same = (g[0] == ref[0] and g[2:] == ref[2:] and g[1].almost_equals(ref[1], precision=1e-9))
        if not same:
            diff.append(f"{paths[k]} (population.{k}: {g[2]}x{g[3]} cells, {g[0]}, {tuple(g[1])[:6]})")
    if diff:
        raise PopulationError(
            f"population rasters do not share one grid: {paths['total']} "
            f"(population.total: {ref[2]}x{ref[3]} cells, {ref[0]}, {tuple(ref[1])[:6]}) vs "
            + "; ".join(diff)
            + ". Warp the age rasters onto the total raster's grid (gdalwarp -tap) WITHOUT resampling counts "
            "(sum aggregation), or drop them and give population.ratios_csv.")
    return paths


def _crs_mismatch(path: Path, key: str, crs: Any, bounds: tuple[float, ...], transform: Affine) -> str:
    """The problem when a raster's coordinates cannot be in its CRS ("" when plausible)."""
    fmt = ", ".join(f"{b:.6g}" for b in bounds)
    if crs.is_geographic and (min(bounds[0], bounds[2]) < -180.5 or max(bounds[0], bounds[2]) > 360.5
                              or min(bounds[1], bounds[3]) < -90.5 or max(bounds[1], bounds[3]) > 90.5):
        return (f"{path} (population.{key}): the raster is labelled {crs} (degrees) but its bounds ({fmt}) "
                f"are not longitudes/latitudes: the coordinates look projected (metres). Fix: assign the "
                f"raster's real CRS (gdal_edit.py -a_srs EPSG:<code> {path.name}).")
    cell = abs(transform.a)
    if crs.is_projected and cell < 0.01 and all(abs(b) <= 360.5 for b in bounds):
        return (f"{path} (population.{key}): the raster is labelled {crs} (metres) but its bounds ({fmt}) "
                f"and cell size ({cell:.6g}) look like degrees (lon/lat). Fix: assign the geographic CRS "
                f"(WorldPop rasters are EPSG:4326: gdal_edit.py -a_srs EPSG:4326 {path.name}).")
    return ""


def _lonlat_bounds(crs: Any, bounds: Sequence[float]) -> str:
    from rasterio.warp import transform_bounds

    try:
        b = transform_bounds(crs, "EPSG:4326", *bounds)
    except Exception:  # an impossible CRS/bounds pair: the bounds in the CRS are shown anyway
        return "lon/lat unknown"
    if not all(math.isfinite(v) for v in b):
        return "lon/lat unknown"
    return f"lon {b[0]:.4f}..{b[2]:.4f}, lat {b[1]:.4f}..{b[3]:.4f}"


def _window(bounds: tuple[float, ...], src: Any, *, study_bounds: tuple[float, ...] | None = None) -> Any:
    """Window of ``src`` covering ``bounds``, rounded out to whole cells and clipped to the raster.

    ``study_bounds`` (the units' bounds when ``bounds`` is widened by a margin): a warning is logged
    only when they, not the margin, reach beyond the raster.
    """
    from rasterio.windows import Window, from_bounds

    widened = study_bounds is not None and tuple(study_bounds) != tuple(bounds)
    if widened:
        _window(study_bounds, src)  # type: ignore[arg-type]  # raises when the units miss the raster, warns
    w = from_bounds(*bounds, transform=src.transform)
    c0 = math.floor(w.col_off + _SNAP_CELLS)
    r0 = math.floor(w.row_off + _SNAP_CELLS)
    c1 = math.ceil(w.col_off + w.width - _SNAP_CELLS)
    r1 = math.ceil(w.row_off + w.height - _SNAP_CELLS)
    cc0, rr0, cc1, rr1 = max(c0, 0), max(r0, 0), min(c1, src.width), min(r1, src.height)
    if cc0 >= cc1 or rr0 >= rr1:
        def fmt(b: Sequence[float]) -> str:
            return ", ".join(f"{v:.6g}" for v in b)

        raise PopulationError(
            f"{src.name}: the population raster does not overlap the study area: raster bounds "
            f"({fmt(src.bounds)}) in {src.crs} = {_lonlat_bounds(src.crs, src.bounds)}; units' bounds "
            f"({fmt(bounds)}) in {src.crs} = {_lonlat_bounds(src.crs, bounds)}. Fix: point "
            f"population.total at the raster of this region, or, if the raster's CRS label is wrong, assign "
            f"the right one (gdal_edit.py -a_srs EPSG:<code>).")
    if (cc0, rr0, cc1, rr1) != (c0, r0, c1, r1) and not widened:
        log.warning("%s: part of the study area lies outside the population raster; population there is "
                    "unknown and not counted", src.name)
    return Window(cc0, rr0, cc1 - cc0, rr1 - rr0)


def _read(src: Any, window: Any) -> tuple[np.ndarray, np.ndarray]:
    """(values, has_data) of ``window`` of the open raster ``src``: nodata and NaN cells are 0 in
    ``values`` and False in ``has_data``; negative cells are kept (and reported by
    :func:`_value_problems`)."""
    a = src.read(1, window=window, masked=True).astype("float64")
    arr = a.filled(np.nan)
    has_data = np.isfinite(arr)
    arr[~has_data] = 0.0
    return arr, has_data


def _num(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 1e12 else f"{v:.4g}"


def _value_problems(path: Path, key: str, negative: np.ndarray, nodata: float | None) -> list[str]:
    """Negative cells (other than nodata) in the study area (their values, in row-major order): never
    counted as 0 silently."""
    if len(negative) == 0:
        return []
    low = float(negative.min())
    return [f"{path} (population.{key}): {len(negative)} cell(s) in the study area hold negative values "
            f"(sum {_num(float(negative.sum()))}, most negative {low:g}; the raster's nodata value is "
            f"{nodata}). Counting them as 0 would silently change the population. Fix: if {low:g} marks "
            f"missing data, set it as the raster's nodata value (gdal_edit.py -a_nodata {low:g} "
            f"{path.name}); otherwise fix the raster."]


def _empty_problem(path: Path, key: str, n_cells: int, n_nodata: int, *, extra: str = "") -> str:
    """No person in the ``n_cells`` cells touching the study area (``n_nodata`` of them nodata)."""
    return (f"{path} (population.{key}): no population in the study area: all {n_cells} cells are nodata "
            f"({n_nodata}) or 0 ({n_cells - n_nodata}){extra}. Fix: check that the raster covers the region "
            f"(the right country/year, not a mask or an empty tile) and that its nodata value is not a real "
            f"count.")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def build_cells(pop_cfg: PopulationConfig, *, units: gpd.GeoDataFrame,
                communities: gpd.GeoDataFrame | None = None, metric_crs: str,
                roads: gpd.GeoDataFrame | None = None) -> Cells:
    """Populated cell pieces per 街道/乡镇 (and 社区/村) from a raster or census totals.

    Parameters
    ----------
    pop_cfg : PopulationConfig
        ``total`` (+ ``age_60plus``/``age_0to3`` rasters or ``ratios_csv``), or ``census_csv``.
    units : GeoDataFrame
        街道/乡镇 polygons with ``unit_code`` (any CRS: EPSG:4326 or metric).
    communities : GeoDataFrame, optional
        社区/村 polygons with ``community_code`` and parent ``unit_code``.
    metric_crs : str
        Projected CRS of the output (``x``/``y`` in metres).
    roads : GeoDataFrame, optional
        Road lines with a ``highway`` column; census mode only (spreading weight).

    Returns
    -------
    Cells
        ``cells`` has one row per populated piece: ``cell_id``, ``row``, ``col`` (of the window or
        grid), ``unit_code``, ``community_code`` ("" when none), ``weight`` (renormalised area
        fraction, 1 for whole cells), ``pop_total``, ``pop_60plus``, ``pop_0to3`` (persons),
        ``x``, ``y`` (cell centre, metres in ``metric_crs``), ``lon``, ``lat`` (degrees), geometry =
        centre point. ``outside`` (:class:`OutsideSummary`) holds the persons of the raster window in
        cells overlapping no unit and those attached by ``population.attach_outside_m``;
        ``conservation`` checks units + outside == window total (see the module docstring).

    Raises
    ------
    PopulationError
        Missing/mismatched inputs (all listed at once) or failed conservation.
    """
    mcrs = _check_metric_crs(metric_crs)
    problems = _check_layer(units, "units", ["unit_code"])
    if communities is not None:
        problems += _check_layer(communities, "communities", ["community_code", "unit_code"])
    if pop_cfg.total is None and pop_cfg.census_csv is None:
        problems.append("population: give `total` (a raster of persons per cell) or `census_csv` in "
                        "coverage.toml")
    if problems:
        raise PopulationError(f"{len(problems)} problem(s) with the population inputs:\n  "
                              + "\n  ".join(problems))
    units = units.assign(unit_code=units["unit_code"].astype(str))
    if communities is not None:
        communities = communities.assign(unit_code=communities["unit_code"].astype(str),
                                         community_code=communities["community_code"].astype(str))
        orphans = sorted(set(communities["unit_code"]) - set(units["unit_code"]))
        if orphans:
            log.warning("communities with a parent unit_code not in the units layer are ignored: %s",
                        ", ".join(orphans[:20]))
    if pop_cfg.total is not None:
        return _build_from_raster(pop_cfg, units=units, communities=communities, mcrs=mcrs)
    return _build_from_census(pop_cfg, units=units, communities=communities, mcrs=mcrs, roads=roads)


def _age_plan(pop_cfg: PopulationConfig, raster_paths: Mapping[str, Path]) -> dict[str, str]:
    plan: dict[str, str] = {}
    missing = []
    for grp in ("60plus", "0to3"):
        if f"age_{grp}" in raster_paths:
            plan[grp] = "raster"
        elif pop_cfg.ratios_csv is not None:
            plan[grp] = "ratios"
        else:
            missing.append(f"population.age_{grp}")
    if missing:
        raise PopulationError(
            f"no source for age group(s) {', '.join(m.split('_', 1)[1] for m in missing)}: give "
            f"{' and '.join(missing)} (age rasters on the total raster's grid) or population.ratios_csv "
            f"(columns unit_code, share_60plus, share_0to3) in coverage.toml.")
    return plan


def _age_source(plan: Mapping[str, str]) -> str:
    names = {"raster": "age rasters", "ratios": "census ratios", "counts": "census counts"}
    kinds = set(plan.values())
    if len(kinds) == 1:
        return names[kinds.pop()]
    return ", ".join(f"{names[v]} ({k})" for k, v in plan.items())


@dataclass(frozen=True)
class _Communities:
    """社区/村 polygons prepared once for :func:`_split_rows`: ``grid`` (in the grid's CRS), and per
    polygon its ``codes`` (community_code) and ``units`` (parent unit_code)."""

    grid: _GridPolygons
    codes: np.ndarray
    units: np.ndarray


def _prepared_communities(communities: gpd.GeoDataFrame | None, *, crs: Any, transform: Affine,
                          shape: tuple[int, int]) -> _Communities | None:
    if communities is None or len(communities) == 0:
        return None
    com = communities.to_crs(crs)
    geoms = list(shapely.make_valid(com.geometry.values))
    return _Communities(grid=_grid_polygons(geoms, transform=transform, shape=shape),
                        codes=com["community_code"].to_numpy(), units=com["unit_code"].to_numpy())


def _split_rows(pieces: pd.DataFrame, com: _Communities | None, *, row0: int, nrows: int) -> pd.DataFrame:
    """Split unit pieces (flat, unit_code, weight) of the grid rows ``row0:row0+nrows`` among the unit's
    communities by area fraction."""
    if com is None or len(pieces) == 0:
        return pieces.assign(community_code="")
    ncols = com.grid.shape[1]
    mask = np.zeros((nrows, ncols), bool)
    mask.flat[pieces["flat"].to_numpy() - row0 * ncols] = True
    flat, gi, frac = _overlay_rows(com.grid, mask, row0=row0)
    cp = pd.DataFrame({"flat": flat, "community_code": com.codes[gi], "unit_code": com.units[gi],
                       "cfrac": frac})
    group = cp.groupby(["flat", "unit_code", "community_code"], sort=False).ngroup().to_numpy()
    _, first = np.unique(group, return_index=True)
    cp = cp.iloc[first].assign(cfrac=_sum_by(group, cp["cfrac"].to_numpy())[first])
    m = pieces.merge(cp, on=["flat", "unit_code"], how="left")
    m["community_code"] = m["community_code"].fillna("")
    m["cfrac"] = m["cfrac"].fillna(1.0)
    cell = m.groupby(["flat", "unit_code"], sort=False).ngroup().to_numpy()
    m["weight"] = m["weight"] * m["cfrac"] / _sum_by(cell, m["cfrac"].to_numpy())
    return m.drop(columns="cfrac")


def _split_communities(pieces: pd.DataFrame, communities: gpd.GeoDataFrame | None, *, crs: Any,
                       transform: Affine, shape: tuple[int, int]) -> pd.DataFrame:
    """Split unit pieces (flat, unit_code, weight) among the unit's communities by area fraction."""
    if communities is None or len(communities) == 0 or len(pieces) == 0:
        return pieces.assign(community_code="")
    com = _prepared_communities(communities, crs=crs, transform=transform, shape=shape)
    return _split_rows(pieces, com, row0=0, nrows=shape[0])


def _unit_pieces_rows(grid: _GridPolygons, codes: np.ndarray, cells_mask: np.ndarray, *,
                      row0: int) -> pd.DataFrame:
    """Pieces (flat, unit_code, frac, weight) of the masked cells of rows ``row0:`` among the units."""
    flat, gi, frac = _overlay_rows(grid, cells_mask, row0=row0)
    return pd.DataFrame({"flat": flat, "unit_code": codes[gi], "frac": frac,
                         "weight": _renormalise(flat, frac)})


def _unit_pieces(geoms: Sequence[Any], codes: np.ndarray, *, transform: Affine, shape: tuple[int, int],
                 cells_mask: np.ndarray) -> pd.DataFrame:
    """Pieces (flat, unit_code, frac, weight) of the masked cells among the units."""
    return _unit_pieces_rows(_grid_polygons(geoms, transform=transform, shape=shape), codes, cells_mask,
                             row0=0)


def _finish(pieces: pd.DataFrame, *, transform: Affine, shape: tuple[int, int], grid_crs: Any,
            mcrs: CRS) -> gpd.GeoDataFrame:
    ncols = shape[1]
    flat = pieces["flat"].to_numpy(np.int64)
    row, col = flat // ncols, flat % ncols
    # affine's stubs allow only float tuples; the arrays are applied element-wise at run time
    cxy = transform @ (col + 0.5, row + 0.5)  # type: ignore[operator]
    cx, cy = np.asarray(cxy[0], float), np.asarray(cxy[1], float)
    to_m = Transformer.from_crs(grid_crs, mcrs, always_xy=True)
    to_ll = Transformer.from_crs(grid_crs, "EPSG:4326", always_xy=True)
    x, y = to_m.transform(cx, cy)
    lon, lat = to_ll.transform(cx, cy)
    df = pd.DataFrame({
        "cell_id": flat, "row": row.astype(np.int64), "col": col.astype(np.int64),
        "unit_code": pieces["unit_code"].astype(str).to_numpy(),
        "community_code": pieces["community_code"].astype(str).to_numpy(),
        "weight": pieces["weight"].to_numpy(float), "pop_total": pieces["pop_total"].to_numpy(float),
        "pop_60plus": pieces["pop_60plus"].to_numpy(float), "pop_0to3": pieces["pop_0to3"].to_numpy(float),
        "x": np.asarray(x, float), "y": np.asarray(y, float),
        "lon": np.asarray(lon, float), "lat": np.asarray(lat, float)})
    df = df.sort_values(["cell_id", "unit_code", "community_code"], kind="stable").reset_index(drop=True)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["x"], df["y"]), crs=mcrs)


def _conserve(units_total: float, window_total: float, tol: float, *, what: str, outside_total: float = 0.0,
              attached_total: float = 0.0, touching_total: float | None = None) -> dict[str, float]:
    """Check ``units_total + outside_total == window_total`` within ``tol`` (relative)."""
    got = units_total + outside_total
    no_ref = 0.0 if got == 0 else math.inf
    rel = abs(got - window_total) / window_total if window_total > 0 else no_ref
    cons = {"window_total": float(window_total), "units_total": float(units_total),
            "outside_total": float(outside_total), "attached_total": float(attached_total),
            "raster_total_touching": float(window_total if touching_total is None else touching_total),
            "rel_error": float(rel)}
    if rel > tol:
        raise PopulationError(
            f"population not conserved: the units hold {units_total:,.1f} persons and {outside_total:,.1f} "
            f"lie in cells outside every unit ({got:,.1f} together), but {what} holds {window_total:,.1f} "
            f"(relative error {rel:.4%} > population.conservation_tolerance {tol:.3%}). "
            f"Likely cause: overlapping or invalid unit polygons (check with `python -m coverage check`), "
            f"age/total rasters on different grids, or a bug in cell splitting; please report it.")
    return cons


@dataclass(frozen=True)
class _RasterStudy:
    """Everything a band of the raster window is overlaid with, prepared once for the whole window.

    ``transform``/``shape``: the window; ``area``: the union of the units (touching cells and the exact
    "in the study area" test); ``units``: the units (pieces); ``codes``: their unit_code;
    ``communities``: for the community split (grid CRS) and ``near_communities``: for attached cells
    (metric CRS); ``mgeoms``: the units in the metric CRS (distances of outside cells).
    """

    transform: Affine
    shape: tuple[int, int]
    grid_crs: Any
    mcrs: CRS
    area: _GridPolygons
    units: _GridPolygons
    codes: np.ndarray
    mgeoms: np.ndarray
    communities: _Communities | None
    near_communities: _MetricCommunities | None
    attach_m: float
    plan: Mapping[str, str]
    ratios: pd.DataFrame | None


@dataclass(frozen=True)
class _Band:
    """Figures of one band of raster rows (:func:`_band`); the whole-area checks sum them.

    ``pieces``: populated cell pieces (``flat`` of the WHOLE window, ``unit_code``, ``community_code``,
    ``weight``, ``pop_*``), attached cells included. ``outside``: populated cells overlapping no unit in
    ``flat`` order: nearest ``unit_code`` (categorical), ``distance_m``, ``pop_total``, ``attached``.
    Per raster key: ``negative_in_area`` (values < 0 of the cells overlapping the units, row-major),
    ``negative_cells`` (cells with data < 0 anywhere in the band), ``in_area`` (persons, negatives as 0,
    in cells overlapping the units), ``nodata_touching`` (cells without data touching the units).
    ``touching_cells``: cells touching the units (GDAL all_touched); ``window_people``: persons of
    ``population.total`` in the band.
    """

    pieces: pd.DataFrame
    outside: pd.DataFrame
    negative_in_area: dict[str, np.ndarray]
    negative_cells: dict[str, int]
    in_area: dict[str, float]
    nodata_touching: dict[str, int]
    touching_cells: int
    window_people: float


def _band_rows(nrows: int, block_rows: int) -> list[tuple[int, int]]:
    """(first row, number of rows) of each band of ``block_rows`` rows covering ``nrows`` rows."""
    return [(r0, min(block_rows, nrows - r0)) for r0 in range(0, nrows, block_rows)]


def _band(srcs: Mapping[str, Any], study: _RasterStudy, *, window: Any, row0: int, nrows: int) -> _Band:
    """Read the rows ``row0:row0+nrows`` of the window of every raster in ``srcs`` and overlay them.

    Every per-cell decision (touching and near the units, in the study area, unit and community
    pieces, outside and attached cells) is the one the whole window would give: the overlays burn the
    band with a one-row margin where they look at neighbours, and cells keep the window's
    ``flat = row * cols + col``.
    """
    from rasterio.windows import Window

    shape, ncols = study.shape, study.shape[1]
    sub = Window(window.col_off, window.row_off + row0, window.width, nrows)
    read = {k: _read(src, sub) for k, src in srcs.items()}
    # cells touching the study area (for counts), and those of them with a value overlapping it (exact)
    touching, near = _burn_dilated(study.area.ids, row0=row0, nrows=nrows, shape=shape)
    nonzero = np.zeros((nrows, ncols), bool)
    for arr, _ in read.values():
        nonzero |= arr != 0
    # GDAL's all_touched misses a cell the area enters by a sliver (1e-5 of a cell: hypothesis found it);
    # the exact overlay decides, so its candidates are the touched cells and their neighbours
    uflat, _, _ = _overlay_rows(study.area, near & nonzero, row0=row0)
    uidx = np.unique(uflat) - row0 * ncols
    in_area = np.zeros((nrows, ncols), bool)
    in_area.flat[uidx] = True
    arrays = {k: np.where(arr > 0, arr, 0.0) for k, (arr, _) in read.items()}
    total = arrays["total"]
    ages = {k.removeprefix("age_"): a for k, a in arrays.items() if k != "total"}
    populated = total > 0
    for a in ages.values():
        populated |= a > 0

    pieces = _unit_pieces_rows(study.units, study.codes, populated, row0=row0)
    pieces = _split_rows(pieces, study.communities, row0=row0, nrows=nrows)
    # cells wholly outside every unit: nearest unit and distance (metres, metric CRS); attach the near ones
    out = _outside_cells(np.flatnonzero(populated & ~in_area) + row0 * ncols, study.mgeoms, study.codes,
                         transform=study.transform, shape=shape, grid_crs=study.grid_crs, mcrs=study.mcrs)
    out["pop_total"] = total.flat[out["flat"].to_numpy(np.int64) - row0 * ncols]
    attach_m = study.attach_m
    out["attached"] = out["distance_m"].to_numpy() <= attach_m if attach_m > 0 else np.zeros(len(out), bool)
    attached = out[out["attached"].to_numpy(bool)]
    if len(attached):
        att = pd.DataFrame({"flat": attached["flat"].to_numpy(np.int64),
                            "unit_code": attached["unit_code"].to_numpy(dtype=object),
                            "frac": 0.0, "weight": 1.0})
        att["community_code"] = _nearest_communities(attached, study.near_communities)
        pieces = pd.concat([pieces, att], ignore_index=True)
    flat = pieces["flat"].to_numpy(np.int64) - row0 * ncols
    w = pieces["weight"].to_numpy()
    pieces["pop_total"] = total.flat[flat] * w
    for g in ("60plus", "0to3"):
        if study.plan[g] == "raster":
            pieces[f"pop_{g}"] = ages[g].flat[flat] * w
        else:
            assert study.ratios is not None
            share = pieces["unit_code"].map(study.ratios[f"share_{g}"]).to_numpy(float)
            pieces[f"pop_{g}"] = pieces["pop_total"].to_numpy() * share
    pieces = pieces[(pieces["pop_total"] > 0) | (pieces["pop_60plus"] > 0) | (pieces["pop_0to3"] > 0)]
    units = sorted(set(study.codes.astype(str)))
    outside = pd.DataFrame({"unit_code": pd.Categorical(out["unit_code"].to_numpy(), categories=units),
                            "distance_m": out["distance_m"].to_numpy(float),
                            "pop_total": out["pop_total"].to_numpy(float),
                            "attached": out["attached"].to_numpy(bool)})
    return _Band(
        pieces=pieces.drop(columns="frac").reset_index(drop=True), outside=outside,
        negative_in_area={k: arr[in_area & ok & (arr < 0)] for k, (arr, ok) in read.items()},
        negative_cells={k: int((ok & (arr < 0)).sum()) for k, (arr, ok) in read.items()},
        in_area={k: float(a.flat[uidx].sum()) for k, a in arrays.items()},
        nodata_touching={k: int((touching & ~ok).sum()) for k, (_, ok) in read.items()},
        touching_cells=int(touching.sum()), window_people=float(total.sum()))


def _checked_bands(paths: Mapping[str, Path], nodata: Mapping[str, float | None], bands: Sequence[_Band]
                   ) -> float:
    """Persons of the total raster in every cell overlapping the units, from the per-band figures.

    Every problem of the rasters in the study area is raised at once: negative cells; no person at all
    (all nodata or 0); an age raster empty, or holding more persons than the total raster.
    """
    keys = list(paths)
    problems: list[str] = []
    for k in keys:
        negative = np.concatenate([b.negative_in_area[k] for b in bands])
        problems += _value_problems(paths[k], k, negative, nodata[k])
    if problems:
        raise PopulationError(f"{len(problems)} problem(s) with the population rasters:\n  "
                              + "\n  ".join(problems))
    for k in keys:
        if (neg := sum(b.negative_cells[k] for b in bands)):
            log.warning("%s (population.%s): %d cell(s) of the raster window outside every unit hold "
                        "negative values; counted as 0 persons outside", paths[k], k, neg)
    touching = sum(b.touching_cells for b in bands)
    held = {k: math.fsum(b.in_area[k] for b in bands) for k in keys}
    no_data = {k: sum(b.nodata_touching[k] for b in bands) for k in keys}
    reference = held["total"]
    if reference <= 0:
        raise PopulationError(_empty_problem(paths["total"], "total", touching, no_data["total"]))
    for k in keys[1:]:
        if held[k] <= 0:
            problems.append(_empty_problem(paths[k], k, touching, no_data[k],
                                           extra=f", while population.total holds {reference:,.1f} persons"))
        elif held[k] > reference * (1 + 1e-6) + 1e-6:
            problems.append(
                f"{paths[k]} (population.{k}): holds {held[k]:,.1f} persons in the study area, more than the "
                f"total raster {paths['total'].name} ({reference:,.1f}, {held[k] / reference:.1%} of it): an "
                f"age group cannot outnumber the whole population. Fix: check that population.{k} and "
                f"population.total are the right rasters (same year, persons per cell, not density), or "
                f"drop population.{k} and give population.ratios_csv.")
    if problems:
        raise PopulationError(f"{len(problems)} problem(s) with the population age rasters:\n  "
                              + "\n  ".join(problems))
    log.info("Read %d population raster(s): %d cells in the study area, %.0f persons in the total raster",
             len(keys), touching, reference)
    return reference


def _build_from_raster(pop_cfg: PopulationConfig, *, units: gpd.GeoDataFrame,
                       communities: gpd.GeoDataFrame | None, mcrs: CRS) -> Cells:
    import contextlib

    import rasterio

    paths = _raster_grids(pop_cfg)
    plan = _age_plan(pop_cfg, paths)
    codes = units["unit_code"].to_numpy(dtype=object)
    attach_m = float(pop_cfg.attach_outside_m)
    ratios = None
    if "ratios" in plan.values():
        cols = [f"share_{g}" for g, v in plan.items() if v == "ratios"]
        ratios = read_unit_csv(pop_cfg.ratios_csv, list(codes), cols, what="census ratios",  # type: ignore[arg-type]
                                 key="population.ratios_csv")
    mgeoms = np.array(list(shapely.make_valid(units.to_crs(mcrs).geometry.values)), dtype=object)
    with rasterio.open(paths["total"]) as src:
        rcrs = src.crs
        u = units.to_crs(rcrs)
        geoms = list(shapely.make_valid(u.geometry.values))
        study_bounds = tuple(shapely.total_bounds(np.array(geoms, dtype=object)))
        bounds = study_bounds
        if attach_m > 0:
            bounds = _widened(bounds, mgeoms, attach_m, mcrs=mcrs, grid_crs=rcrs)
        win = _window(bounds, src, study_bounds=study_bounds)
        wtr = rasterio.windows.transform(win, src.transform)
    shape = (int(win.height), int(win.width))
    block_rows = int(pop_cfg.read_block_rows)
    spans = _band_rows(shape[0], block_rows)
    log.info("Reading population window %dx%d cells (offset row %d col %d) of %s in %d band(s) of up to %d "
             "rows (population.read_block_rows)", shape[0], shape[1], win.row_off, win.col_off,
             paths["total"], len(spans), min(block_rows, shape[0]))
    union = shapely.union_all(np.array(geoms, dtype=object))
    study = _RasterStudy(
        transform=wtr, shape=shape, grid_crs=rcrs, mcrs=mcrs,
        area=_grid_polygons([union], transform=wtr, shape=shape),
        units=_grid_polygons(geoms, transform=wtr, shape=shape), codes=codes, mgeoms=mgeoms,
        communities=_prepared_communities(communities, crs=rcrs, transform=wtr, shape=shape),
        near_communities=_metric_communities(communities, mcrs=mcrs) if attach_m > 0 else None,
        attach_m=attach_m, plan=plan, ratios=ratios)
    keys = ["total"] + [f"age_{g}" for g, v in plan.items() if v == "raster"]
    with contextlib.ExitStack() as stack:
        srcs = {k: stack.enter_context(rasterio.open(paths[k])) for k in keys}
        nodata = {k: src.nodata for k, src in srcs.items()}
        bands = [_band(srcs, study, window=win, row0=r0, nrows=n) for r0, n in spans]
    reference = _checked_bands({k: paths[k] for k in keys}, nodata, bands)

    nonempty = [b.pieces for b in bands if len(b.pieces)] or [bands[0].pieces]
    pieces = pd.concat(nonempty, ignore_index=True)
    outs = [b.outside for b in bands if len(b.outside)] or [bands[0].outside]
    out = pd.concat(outs, ignore_index=True)
    out["unit_code"] = out["unit_code"].astype(str)
    window_total = math.fsum(b.window_people for b in bands)
    summary = _outside_summary(out, out["attached"].to_numpy(bool), window_total=window_total,
                               attach_m=attach_m,
                               note=f"raster cells of the window (units' bounding box"
                                    f"{f' widened by {attach_m:g} m' if attach_m > 0 else ''}, whole cells) "
                                    f"that overlap no unit; distances from cell centres in {mcrs.name}")
    cells = _finish(pieces, transform=wtr, shape=shape, grid_crs=rcrs, mcrs=mcrs)
    # conservation: independent of the per-unit split: units + outside (by the union of units) = window;
    # the units' total is summed over the sorted cells table, so it does not depend on the bands
    cons = _conserve(float(cells["pop_total"].sum()), window_total, pop_cfg.conservation_tolerance,
                     what=f"the window of {paths['total'].name} ({shape[0]}x{shape[1]} cells around the "
                          f"units)",
                     outside_total=summary.people, attached_total=summary.attached_people,
                     touching_total=reference)
    log.info("Assigned %d populated cell pieces (%d cells) to %d units: %.0f persons (raster total "
             "touching the study area %.0f, rel. error %.2e); ages from %s", len(cells),
             cells["cell_id"].nunique(), cells["unit_code"].nunique(), cons["units_total"],
             cons["raster_total_touching"], cons["rel_error"], _age_source(plan))
    log.info("Population %s", summary.text())
    return Cells(cells=cells, transform=wtr, raster_crs=rcrs.to_string(), shape=shape, conservation=cons,
                 method=METHOD_RASTER, age_source=_age_source(plan), outside=summary)


def _widened(bounds: tuple[float, ...], mgeoms: np.ndarray, margin_m: float, *, mcrs: CRS,
             grid_crs: Any) -> tuple[float, float, float, float]:
    """``bounds`` (grid CRS) grown to hold the units' metric bounding box widened by ``margin_m``."""
    minx, miny, maxx, maxy = shapely.total_bounds(mgeoms)
    wide = shapely.box(minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m)
    wide = shapely.segmentize(wide, max(maxx - minx, maxy - miny, margin_m) / 64)
    wb = gpd.GeoSeries([wide], crs=mcrs).to_crs(grid_crs).total_bounds
    return (min(bounds[0], wb[0]), min(bounds[1], wb[1]), max(bounds[2], wb[2]), max(bounds[3], wb[3]))


def _nearest_units(x: np.ndarray, y: np.ndarray, mgeoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest polygon, distance in metres) of points lying outside every polygon.

    The polygons' rings are cut into segments in a spatial index (:class:`shapely.STRtree`): for a point
    outside a polygon its distance to the polygon is its distance to the nearest ring segment, and a
    segment is cheap to measure where a whole coastline is not. Ties go to the first polygon.
    """
    parts, pidx = shapely.get_parts(mgeoms, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    rings, ridx = shapely.get_rings(parts[poly], return_index=True)
    owner = pidx[poly][ridx]
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    same = cidx[1:] == cidx[:-1]
    segs = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    seg_owner = owner[cidx[:-1][same]]
    if len(x) == 0 or len(segs) == 0:
        return np.zeros(len(x), np.int64), np.full(len(x), np.inf)
    (q, si), dist = shapely.STRtree(segs).query_nearest(shapely.points(x, y), return_distance=True,
                                                        all_matches=True)
    best = (pd.DataFrame({"q": q, "u": seg_owner[si], "d": dist}).sort_values(["q", "u"], kind="stable")
            .drop_duplicates("q").set_index("q").reindex(np.arange(len(x))))
    return best["u"].to_numpy(np.int64), best["d"].to_numpy(float)


def _centres(flat: np.ndarray, *, transform: Affine, shape: tuple[int, int], grid_crs: Any,
             to_crs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of flat indices, in ``to_crs``."""
    row, col = flat // shape[1], flat % shape[1]
    # affine's stubs allow only float tuples; the arrays are applied element-wise at run time
    cxy = transform @ (col + 0.5, row + 0.5)  # type: ignore[operator]
    cx, cy = np.asarray(cxy[0], float), np.asarray(cxy[1], float)
    x, y = Transformer.from_crs(grid_crs, to_crs, always_xy=True).transform(cx, cy)
    return np.asarray(x, float), np.asarray(y, float)


def _outside_cells(flat: np.ndarray, mgeoms: np.ndarray, codes: np.ndarray, *, transform: Affine,
                   shape: tuple[int, int], grid_crs: Any, mcrs: CRS) -> pd.DataFrame:
    """Cells overlapping no unit: ``flat``, ``x``/``y`` (centre, metric), nearest ``unit_code``,
    ``distance_m`` from the centre to that unit's polygon."""
    flat = np.asarray(flat, np.int64)
    x, y = _centres(flat, transform=transform, shape=shape, grid_crs=grid_crs, to_crs=mcrs)
    ui, dist = _nearest_units(x, y, mgeoms)
    return pd.DataFrame({"flat": flat, "x": x, "y": y, "unit_code": codes[ui].astype(str) if len(ui) else
                         np.array([], dtype=object), "distance_m": dist})


@dataclass(frozen=True)
class _MetricCommunities:
    """社区/村 polygons in the metric CRS (made valid), with ``codes`` and parent ``units``."""

    geoms: np.ndarray
    codes: np.ndarray
    units: np.ndarray


def _metric_communities(communities: gpd.GeoDataFrame | None, *, mcrs: CRS) -> _MetricCommunities | None:
    if communities is None or len(communities) == 0:
        return None
    com = communities.to_crs(mcrs)
    return _MetricCommunities(geoms=np.array(list(shapely.make_valid(com.geometry.values)), dtype=object),
                              codes=com["community_code"].to_numpy(dtype=object),
                              units=com["unit_code"].to_numpy(dtype=object))


def _nearest_communities(cells: pd.DataFrame, com: _MetricCommunities | None) -> np.ndarray:
    """For attached cells (``unit_code``, ``x``, ``y`` metric): the nearest community OF THAT UNIT
    ("" when the unit has none)."""
    out = np.full(len(cells), "", dtype=object)
    if com is None:
        return out
    ucodes = cells["unit_code"].to_numpy(dtype=object)
    pts = shapely.points(cells["x"].to_numpy(float), cells["y"].to_numpy(float))
    for code in pd.unique(ucodes):
        mine = np.flatnonzero(com.units == code)
        if len(mine) == 0:
            continue
        sel = np.flatnonzero(ucodes == code)
        q, ci = shapely.STRtree(com.geoms[mine]).query_nearest(pts[sel], all_matches=True)
        first = pd.DataFrame({"q": q, "c": ci}).sort_values(["q", "c"]).drop_duplicates("q")
        out[sel[first["q"].to_numpy()]] = com.codes[mine][first["c"].to_numpy()]
    return out


def _outside_summary(out: pd.DataFrame, attached: np.ndarray, *, window_total: float, attach_m: float,
                     note: str) -> OutsideSummary:
    """:class:`OutsideSummary` of the outside cells (``unit_code`` nearest, ``distance_m``, ``pop_total``)
    of which ``attached`` joined their nearest unit."""
    keep = out["pop_total"].to_numpy() > 0
    stay, att = out[keep & ~attached], out[keep & attached]
    g = stay.groupby("unit_code")
    by = pd.DataFrame({"cells": g.size(), "people": g["pop_total"].sum(),
                       "distance_min_m": g["distance_m"].min(), "distance_max_m": g["distance_m"].max()})
    ga = att.groupby("unit_code")
    by = by.join(pd.DataFrame({"attached_cells": ga.size(), "attached_people": ga["pop_total"].sum()}),
                 how="outer")
    by = by.rename_axis("unit_code").reset_index()
    for c in ("cells", "attached_cells"):
        by[c] = by[c].fillna(0).astype("int64")
    for c in ("people", "attached_people"):
        by[c] = by[c].fillna(0.0).astype(float)
    by = by.sort_values(["people", "attached_people", "unit_code"], ascending=[False, False, True],
                        kind="stable").reset_index(drop=True)
    by = by[list(OUTSIDE_COLUMNS)] if len(by) else _empty_by_unit()
    people = float(stay["pop_total"].sum())
    return OutsideSummary(people=people, cells=len(stay),
                          share_of_raster_window=people / window_total if window_total > 0 else 0.0,
                          window_people=window_total, attach_m=attach_m, attached_cells=len(att),
                          attached_people=float(att["pop_total"].sum()), by_nearest_unit=by, note=note)


def _road_lengths(pieces: pd.DataFrame, roads: gpd.GeoDataFrame | None, unit_geoms: Mapping[str, Any], *,
                  transform: Affine, shape: tuple[int, int], mcrs: CRS) -> np.ndarray:
    """Length (m) of residential roads inside each piece's cell AND its unit."""
    out = np.zeros(len(pieces))
    if roads is None or len(roads) == 0:
        return out
    if "highway" not in roads.columns:
        raise PopulationError(f"roads: no 'highway' column (have {', '.join(map(str, roads.columns))}); "
                              f"census spreading needs the OSM highway class of each road line.")
    if roads.crs is None:
        raise PopulationError("roads: no CRS; give the road layer's CRS (network.crs in coverage.toml).")
    r = roads[roads["highway"].astype(str).isin(RESIDENTIAL_HIGHWAYS)]
    if len(r) == 0:
        return out
    rg = r.to_crs(mcrs).geometry.values
    # clip roads to each unit, remembering the unit
    rtree = shapely.STRtree(rg)
    parts, owners = [], []
    for code, ug in unit_geoms.items():
        idx = rtree.query(ug, predicate="intersects")
        if len(idx) == 0:
            continue
        clipped = shapely.intersection(rg[idx], ug)
        keep = shapely.length(clipped) > 0
        parts.append(clipped[keep])
        owners.append(np.full(int(keep.sum()), code, dtype=object))
    if not parts:
        return out
    rparts, rowner = np.concatenate(parts), np.concatenate(owners)
    flat = pieces["flat"].to_numpy(np.int64)
    boxes = _cell_boxes(flat // shape[1], flat % shape[1], transform)
    q_box, q_road = shapely.STRtree(rparts).query(boxes, predicate="intersects")
    same = rowner[q_road] == pieces["unit_code"].to_numpy(dtype=object)[q_box]
    q_box, q_road = q_box[same], q_road[same]
    ln = shapely.length(shapely.intersection(boxes[q_box], rparts[q_road]))
    return np.bincount(q_box, weights=ln, minlength=len(pieces))


def _build_from_census(pop_cfg: PopulationConfig, *, units: gpd.GeoDataFrame,
                       communities: gpd.GeoDataFrame | None, mcrs: CRS,
                       roads: gpd.GeoDataFrame | None) -> Cells:
    if pop_cfg.census_weight != "residential_road_length":
        raise PopulationError(f"population.census_weight = {pop_cfg.census_weight!r} is not implemented; "
                              f"use 'residential_road_length' (or give a population raster as "
                              f"population.total).")
    codes = units["unit_code"].to_numpy(dtype=object)
    assert pop_cfg.census_csv is not None
    path = Path(pop_cfg.census_csv)
    try:
        head = list(pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns) if path.is_file() else []
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        head = []  # reported by read_unit_csv below
    cols = ["pop_total"] + [c for c in ("pop_60plus", "pop_0to3") if c in head]
    census = read_unit_csv(path, list(codes), cols, what="census totals", key="population.census_csv")
    plan: dict[str, str] = {}
    for g in ("60plus", "0to3"):
        plan[g] = "counts" if f"pop_{g}" in cols else "ratios"
    ratios = None
    if "ratios" in plan.values():
        if pop_cfg.ratios_csv is None:
            miss = [f"pop_{g}" for g, v in plan.items() if v == "ratios"]
            raise PopulationError(f"{path}: no column(s) {', '.join(miss)} and no population.ratios_csv; "
                                  f"add the columns to the census CSV or give population.ratios_csv "
                                  f"(unit_code, share_60plus, share_0to3) in coverage.toml.")
        ratios = read_unit_csv(pop_cfg.ratios_csv, list(codes),
                                 [f"share_{g}" for g, v in plan.items() if v == "ratios"],
                                 what="census ratios", key="population.ratios_csv")

    u = units.to_crs(mcrs)
    geoms = list(shapely.make_valid(u.geometry.values))
    size = float(pop_cfg.census_cell_m)
    minx, miny, maxx, maxy = shapely.total_bounds(np.array(geoms, dtype=object))
    x0, y1 = math.floor(minx / size) * size, math.ceil(maxy / size) * size
    ncols = max(1, math.ceil((maxx - x0) / size))
    nrows = max(1, math.ceil((y1 - miny) / size))
    transform = Affine(size, 0.0, x0, 0.0, -size, y1)
    shape = (nrows, ncols)
    pieces = _unit_pieces(geoms, codes, transform=transform, shape=shape, cells_mask=np.ones(shape, bool))
    lengths = _road_lengths(pieces, roads, dict(zip(codes, geoms, strict=True)), transform=transform,
                            shape=shape, mcrs=mcrs)
    pieces["road_m"] = lengths
    road_tot = pieces.groupby("unit_code")["road_m"].transform("sum").to_numpy()
    area_tot = pieces.groupby("unit_code")["frac"].transform("sum").to_numpy()
    share = np.where(road_tot > 0, lengths / np.where(road_tot > 0, road_tot, 1.0), pieces["frac"] / area_tot)
    uniform = sorted(set(pieces.loc[road_tot == 0, "unit_code"]))
    if uniform:
        log.warning("census spreading: %d unit(s) have no residential/living_street/unclassified/tertiary "
                    "roads; their totals are spread uniformly by area: %s", len(uniform),
                    ", ".join(uniform[:20]))
    pieces["share"] = share
    for c in ("pop_total", "pop_60plus", "pop_0to3"):
        g = c.removeprefix("pop_")
        if c == "pop_total" or plan[g] == "counts":
            pieces[c] = pieces["unit_code"].map(census[c]).to_numpy(float) * share
        else:
            assert ratios is not None
            pieces[c] = (pieces["unit_code"].map(census["pop_total"]).to_numpy(float) * share
                         * pieces["unit_code"].map(ratios[f"share_{g}"]).to_numpy(float))
    pieces = pieces[pieces["pop_total"] > 0].drop(columns=["road_m", "share"])
    # communities split the piece's persons by area within the unit
    before = pieces[["pop_total", "pop_60plus", "pop_0to3"]].to_numpy() / pieces[["weight"]].to_numpy()
    pieces = pieces.assign(_p0=before[:, 0], _p1=before[:, 1], _p2=before[:, 2])
    pieces = _split_communities(pieces, communities, crs=mcrs, transform=transform, shape=shape)
    for i, c in enumerate(("pop_total", "pop_60plus", "pop_0to3")):
        pieces[c] = pieces[f"_p{i}"] * pieces["weight"]
    pieces = pieces.drop(columns=["_p0", "_p1", "_p2"])
    no_cells = sorted(set(codes) - set(pieces["unit_code"]) - set(census.index[census["pop_total"] == 0]))
    if no_cells:
        raise PopulationError(f"census spreading: unit(s) {', '.join(no_cells)} cover no grid cell; check "
                              f"their geometry (empty or degenerate polygons).")
    got = pieces.groupby("unit_code")["pop_total"].sum().reindex(census.index, fill_value=0.0)
    off = census.index[~np.isclose(got.to_numpy(), census["pop_total"].to_numpy(),
                                   rtol=pop_cfg.conservation_tolerance)]
    if len(off):
        raise PopulationError("census spreading did not conserve unit totals: " + ", ".join(
            f"{u}: {got[u]:,.1f} spread vs {census.loc[u, 'pop_total']:,.1f} in {path.name}"
            for u in off[:10])
            + ". Likely cause: overlapping unit polygons; check the units layer.")
    cons = _conserve(float(pieces["pop_total"].sum()), float(census["pop_total"].sum()),
                     pop_cfg.conservation_tolerance, what=f"the census CSV {path.name}")
    cells = _finish(pieces, transform=transform, shape=shape, grid_crs=mcrs, mcrs=mcrs)
    log.info("Spread census totals of %d units over %d cell pieces of %.0f m (%s): %.0f persons",
             len(codes), len(cells), size, METHOD_CENSUS, cons["units_total"])
    outside = OutsideSummary(window_people=cons["window_total"], note=NOTE_CENSUS_OUTSIDE)
    return Cells(cells=cells, transform=transform, raster_crs=mcrs.to_string(), shape=shape,
                 conservation=cons, method=METHOD_CENSUS, age_source=_age_source(plan), outside=outside)


def cell_polygons(cells: pd.DataFrame, transform: Affine, crs: Any) -> gpd.GeoSeries:
    """Cell squares of the cells table (from ``row``/``col`` and the window transform).

    Parameters
    ----------
    cells : DataFrame
        Has ``row`` and ``col`` (as in :attr:`Cells.cells`).
    transform, crs
        :attr:`Cells.transform` and :attr:`Cells.raster_crs`.

    Returns
    -------
    GeoSeries
        One square per row, index aligned with ``cells``, in ``crs`` (use ``.to_crs(4326)`` for output).
    """
    boxes = _cell_boxes(cells["row"].to_numpy(np.int64), cells["col"].to_numpy(np.int64), transform)
    return gpd.GeoSeries(boxes, index=cells.index, crs=crs)
