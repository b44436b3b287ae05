"""Overlapping 街道/乡镇 (and 社区/村) polygons: listed pair by pair with codes, m² and %, not accepted."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from coverage.config import Config, NetworkConfig, PopulationConfig, RegionConfig, UnitsConfig
from coverage.errors import LayerError
from coverage.layers import read_units

METRIC = "EPSG:32648"
X0, Y0 = 404_000.0, 3_386_000.0  # near Chengdu, UTM 48N
TO_LL = Transformer.from_crs(METRIC, "EPSG:4326", always_xy=True)


def _box_ll(x0: float, y0: float, x1: float, y1: float) -> shapely.Geometry:
    """A box given in metres (UTM 48N) as a lon/lat polygon."""
    return shapely.transform(shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1),
                             lambda xy: np.c_[TO_LL.transform(xy[:, 0], xy[:, 1])])


def _write(tmp: Path, name: str, boxes: dict[str, tuple[float, float, float, float]], **cols: list) -> Path:
    gdf = gpd.GeoDataFrame({"code": list(boxes), "name": list(boxes), "type": ["街道"] * len(boxes), **cols},
                           geometry=[_box_ll(*b) for b in boxes.values()], crs="EPSG:4326")
    p = tmp / name
    gdf.to_file(p, driver="GeoJSON")
    return p


def _cfg(tmp: Path, units: UnitsConfig, metric_crs: str = METRIC) -> Config:
    return Config(path=tmp / "coverage.toml", region=RegionConfig(name="t", metric_crs=metric_crs),
                  units=units, network=NetworkConfig(path=tmp / "x.osm"),
                  population=PopulationConfig(total=tmp / "p.tif"), facilities=(), services={})


def test_overlapping_units_listed_with_codes_area_and_share(tmp_path: Path) -> None:
    # A and B: 1 km squares overlapping by a 100 m x 1 km strip (100,000 m², 10 %); C overlaps D by
    # 50 m x 50 m = 2,500 m² of the 200 m x 200 m D (6.25 %); E only shares a border with A
    p = _write(tmp_path, "units.geojson", {"A": (0, 0, 1000, 1000), "B": (900, 0, 1900, 1000),
                                            "C": (0, 2000, 1000, 3000), "D": (950, 2950, 1150, 3150),
                                            "E": (-1000, 0, 0, 1000)})
    with pytest.raises(LayerError,
                       match=r"(?s)units\.geojson: 2 pair\(s\) of overlapping unit polygons \(measured in "
                             r"EPSG:32648\): 'A' and 'B': 100,000 m² \(10\.0 % of 'A'\); 'C' and 'D': "
                             r"2,500 m² \(6\.3 % of 'D'\)\. Each place must belong to one unit.*Fix: correct "
                             r"the polygons .*overlaps up to 1% of the smaller polygon or 10,000 m² "
                             r"\(whichever is smaller\) and slivers narrower than 5 m are tolerated\."):
        read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    # the same through metric_crs = "auto" (the UTM zone of the centre)
    with pytest.raises(LayerError, match=r"measured in EPSG:32648\): 'A' and 'B'"):
        read_units(_cfg(tmp_path, UnitsConfig(path=p), metric_crs="auto"))


def test_shared_borders_and_slivers_are_not_overlaps(tmp_path: Path) -> None:
    # A/B share a border; B/C overlap by a 2 m wide, 3 km long strip (6,000 m²... of a digitised border),
    # C/D by a 90 m x 90 m corner (8,100 m² < 1 % of 1 km² = 10,000 m²)
    p = _write(tmp_path, "units.geojson", {"A": (0, 0, 1000, 3000), "B": (1000, 0, 2000, 3000),
                                            "C": (1998, 0, 5000, 3000), "D": (4910, 2910, 6000, 4000)})
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    assert u.units["unit_code"].tolist() == ["A", "B", "C", "D"]
    # ... but the same corner is an overlap for a small unit (8,100 m² > 1 % of D's 0.2 km²)
    p = _write(tmp_path, "units.geojson", {"C": (0, 0, 3000, 3000), "D": (2910, 2910, 3300, 3420)})
    with pytest.raises(LayerError, match=r"'C' and 'D': 8,100 m² \(4\.1 % of 'D'\)"):
        read_units(_cfg(tmp_path, UnitsConfig(path=p)))


def test_overlaps_collected_with_other_problems_and_communities(tmp_path: Path) -> None:
    u = _write(tmp_path, "units.geojson", {"A": (0, 0, 1000, 1000), "B": (1000, 0, 2000, 1000)})
    c = tmp_path / "communities.geojson"
    gpd.GeoDataFrame({"code": ["A1", "A2", "B1"], "name": ["一村", "二村", "三村"],
                      "parent_code": ["A", "A", "Z"]},
                     geometry=[_box_ll(0, 0, 600, 1000), _box_ll(400, 0, 1000, 1000),
                               _box_ll(1000, 0, 2000, 1000)], crs="EPSG:4326").to_file(c, driver="GeoJSON")
    with pytest.raises(LayerError, match=r"(?s)2 problem\(s\).*parent codes not among the units: 'Z'.*"
                                         r"communities\.geojson: 1 pair\(s\) of overlapping community "
                                         r"polygons .*'A1' and 'A2': 200,000 m² \(33\.3 % of 'A[12]'\)"):
        read_units(_cfg(tmp_path, UnitsConfig(path=u, communities_path=c)))


def test_overlapping_osm_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import coverage.layers.units as lu

    def fake_units_from_osm(path, **kw):  # two admin boundaries of an extract, one drawn over the other
        return gpd.GeoDataFrame({"unit_code": ["KM-G", "KM-M"], "unit_name": ["a", "b"],
                                 "unit_type": ["镇"] * 2, "unit_class": ["郊区"] * 2,
                                 "area_type": ["mixed"] * 2},
                                geometry=[_box_ll(0, 0, 1000, 1000), _box_ll(0, 0, 1000, 1000)], crs=4326)

    monkeypatch.setattr(lu, "units_from_osm", fake_units_from_osm)
    pbf = tmp_path / "region.osm.pbf"
    with pytest.raises(LayerError, match=r"region\.osm\.pbf: 1 pair\(s\) of overlapping unit polygons .*"
                                         r"'KM-G' and 'KM-M': 1,000,000 m² \(100\.0 % of 'KM-G'\)"):
        read_units(_cfg(tmp_path, UnitsConfig(path=pbf, source="osm", admin_level=4)))
