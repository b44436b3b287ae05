"""Region config: the demo config loads; every kind of bad value is rejected with file/key/value/allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage.config import ConfigError, load_config
from coverage.errors import CoverageError, InputError

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "layers" / "demo" / "coverage.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "coverage.toml"
    p.write_text(text, encoding="utf-8")
    return p


MINIMAL = """
[region]
name = "t"
[units]
path = "units.geojson"
[network]
path = "roads.osm"
[population]
total = "pop.tif"
"""


def test_demo_config_loads_with_paths_resolved() -> None:
    cfg = load_config(DEMO)
    assert cfg.region.name == "demo"
    assert cfg.walk.speed_mps == 1.0
    assert cfg.network.path == DEMO.parent / "roads.osm"
    assert [f.name for f in cfg.facilities] == ["elderly_childcare", "meal_points", "health"]
    assert cfg.facilities[1].coords == "gcj02"
    assert cfg.services["elderly"].thresholds_min == (5.0, 10.0, 15.0)
    meal = cfg.services["meal"]
    assert (meal.threshold_min_for_class("城区"), meal.threshold_min_for_class("郊区")) == (15.0, 30.0)


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.region.metric_crs == "auto"
    assert cfg.snapping.cell_max_snap_m == 500.0
    assert cfg.standards.childcare_slots_new_per_1000 == 10.0
    assert cfg.standards.childcare_slots_old_per_1000 == 8.0
    assert cfg.services["childcare"].mode == "walk"
    assert cfg.services["meal"].mode == "delivery"
    assert cfg.delivery.speeds_kph["residential"] == 15.0


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        cfg.walk.speed_mps = 2.0  # type: ignore[misc]


def test_unknown_key_names_file_key_and_allowed(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + "[walk]\nspeeed_mps = 1.0\n")
    with pytest.raises(ConfigError,
                       match=r"coverage\.toml.*\n.*walk\.speeed_mps: unknown key \(allowed keys: speed_mps"):
        load_config(p)


def test_wrong_type_and_range_are_all_reported_at_once(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + '[walk]\nspeed_mps = "fast"\n[snapping]\ncell_max_snap_m = -5\n'
              '[delivery]\nspeeds_kph = {residential = 200}\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "3 problem(s)" in msg
    assert "walk.speed_mps = 'fast': expected a number" in msg
    assert "snapping.cell_max_snap_m = -5: expected a distance in metres, 0 < d <= 5000" in msg
    assert "delivery.speeds_kph.residential = 200.0: expected a speed between 3 and 60 km/h" in msg


def test_walking_speed_out_of_range(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + "[walk]\nspeed_mps = 5.0\n")
    with pytest.raises(ConfigError,
                       match=r"walk\.speed_mps = 5\.0: expected a walking speed between 0\.3 and 3\.0"):
        load_config(p)


def test_unknown_section_service_and_kind(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + '[servces]\n[services.dentist]\n[services.meal]\nkinds = ["pizza"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "servces: unknown section" in msg
    # a new service must say what it is (an unknown id is an addition to the registry)
    assert "services.dentist.label_zh: missing (required)" in msg
    assert "services.meal.kinds = 'pizza': expected one of the canonical kinds" in msg


def test_missing_required_and_bad_literal(tmp_path: Path) -> None:
    p = write(tmp_path, '[region]\nname = "t"\n[network]\nsource = "shapefile"\n[population]\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "units.path: missing (required)" in msg
    assert "network.source = 'shapefile': expected one of 'osm_file', 'road_layer', 'osmnx'" in msg
    assert "population: give `total`" in msg


def test_geographic_metric_crs_rejected(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL.replace('name = "t"', 'name = "t"\nmetric_crs = "EPSG:4490"'))
    with pytest.raises(ConfigError, match=r"region\.metric_crs = 'EPSG:4490': expected a PROJECTED CRS"):
        load_config(p)


def test_facility_layers_validated(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + '[[facilities]]\nname = "a"\npath = "a.csv"\ncoords = "wgs-84"\n'
              '[[facilities]]\nname = "a"\npath = "b.csv"\ndefault_kind = "canteen"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "facilities[0].coords = 'wgs-84': expected one of 'wgs84', 'cgcs2000', 'gcj02', 'bd09'" in msg
    assert "facilities[1].name = 'a': expected a name not used by another" in msg
    assert "facilities[1].default_kind = 'canteen'" in msg


def test_facility_filters_load(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + '[[facilities]]\nname = "amap"\npath = "amap.csv"\ncoords = "gcj02"\n'
              'exclude = { type = "宠物|口腔|整形" }\ninclude = { name = "社区" }\n')
    fc = load_config(p).facilities[0]
    assert fc.exclude == {"type": "宠物|口腔|整形"} and fc.include == {"name": "社区"}
    assert load_config(write(tmp_path, MINIMAL + '[[facilities]]\nname = "a"\npath = "a.csv"\n')
                       ).facilities[0].exclude == {}


def test_facility_filters_validated(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + '[[facilities]]\nname = "amap"\npath = "amap.csv"\n'
              'exclude = { type = "宠物|(口腔" }\ninclude = { name = 3 }\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "facilities[0].exclude.type = '宠物|(口腔': expected a regular expression (missing ), " in msg
    assert "facilities[0].include.name = 3: expected a string" in msg
    p = write(tmp_path, MINIMAL + '[[facilities]]\nname = "amap"\npath = "amap.csv"\nexclude = "宠物"\n')
    with pytest.raises(ConfigError, match=r"facilities\[0\]\.exclude = '宠物': expected a table of "):
        load_config(p)


def test_facility_duplicate_distance_range(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + '[[facilities]]\nname = "a"\npath = "a.csv"\nduplicate_max_m = -1\n')
    with pytest.raises(ConfigError, match=r"facilities\[0\]\.duplicate_max_m = -1: "
                                           r"expected a distance between 0 and 5000 m"):
        load_config(p)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="region config not found"):
        load_config(tmp_path / "nope.toml")
    p = write(tmp_path, "[region\nname=")
    with pytest.raises(ConfigError, match="not valid UTF-8 TOML"):
        load_config(p)


# ---------------------------------------------------------------------------------------------
# The service registry: region configs override built-in entries and add new ones
# ---------------------------------------------------------------------------------------------


def test_config_errors_are_input_errors_of_the_one_root(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_config(write(tmp_path, MINIMAL + "[walk]\nspeed_mps = 9.0\n"))
    assert isinstance(err.value, CoverageError) and isinstance(err.value, ValueError)


def test_service_override_keeps_the_other_fields(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + "[services.childcare]\nspeed_mps = 1.2\n"
                                                "[services.meal]\n"
                                                "class_thresholds_min = {\"城区\" = 10, \"郊区\" = 20}\n"))
    ch = cfg.services["childcare"]
    assert ch.speed_mps == 1.2 and ch.kinds == ("childcare", "kindergarten", "old_young_complex")
    assert ch.demand_col == "pop_0to3"
    assert cfg.services["meal"].threshold_min_for_class("郊区") == 20.0
    assert cfg.services["elderly"].speed_mps is None  # the mode's speed


def test_new_service_and_kind_from_the_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + """
[kinds.pharmacy]
label_zh = "药店"
color = "#00aa88"
[services.pharmacy]
label_zh = "药店服务"
label_en = "pharmacy"
kinds = ["pharmacy", "health_center"]
thresholds_min = [10]
demand_col = "pop_60plus"
[[facilities]]
name = "p"
path = "p.csv"
default_kind = "pharmacy"
"""))
    assert cfg.kinds["pharmacy"].label_zh == "药店"
    s = cfg.services["pharmacy"]
    assert (s.mode, s.thresholds_min, s.column("share", 10)) == (
        "walk", (10.0,), "pharmacy_share_60plus_10min")
    assert list(cfg.services)[:4] == ["elderly", "childcare", "meal", "health"]


def test_bad_service_entries_are_all_reported(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + """
[services.meal]
urban_threshold_min = 15
[services.dental]
label_zh = "口腔"
kinds = ["dentist"]
mode = "delivery"
speed_mps = 1.2
demand_col = "pop_80plus"
""")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "services.meal.urban_threshold_min: renamed; write class_thresholds_min" in msg
    assert "services.dental.label_en: missing (required)" in msg
    p = write(tmp_path, MINIMAL + """
[services.dental]
label_zh = "口腔"
label_en = "dental"
kinds = ["dentist"]
mode = "delivery"
speed_mps = 1.2
demand_col = "pop_80plus"
class_thresholds_min = {"城市" = 10}
""")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "services.dental.kinds = 'dentist': expected one of the canonical kinds" in msg
    assert "services.dental.speed_mps = 1.2: expected no value: delivery speeds are per road class" in msg
    assert "services.dental.demand_col = 'pop_80plus'" in msg
    assert "services.dental.class_thresholds_min.城市" in msg


def test_facility_layer_new_keys_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + '[[facilities]]\nname = "a"\npath = "a.xlsx"\n'))
    f = cfg.facilities[0]
    assert (f.max_rejected_share, f.keep_duplicates, f.sheet, f.ranges) == (0.2, False, "", {})
    assert f.plausible_range("beds") == (0.0, 5000.0)
    assert f.plausible_range("floor_area_m2") == (10.0, 200000.0)
    cfg = load_config(write(tmp_path, MINIMAL + '[[facilities]]\nname = "a"\npath = "a.xlsx"\n'
                            'sheet = "养老机构"\nkeep_duplicates = true\nmax_rejected_share = 1.0\n'
                            'ranges = { beds = [1, 8000] }\n'))
    f = cfg.facilities[0]
    assert (f.sheet, f.keep_duplicates, f.max_rejected_share) == ("养老机构", True, 1.0)
    assert f.plausible_range("beds") == (1.0, 8000.0) and f.plausible_range("nursing_beds") == (0.0, 5000.0)


def test_facility_ranges_and_rejected_share_validated(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + '[[facilities]]\nname = "a"\npath = "a.csv"\nmax_rejected_share = 1.5\n'
              'ranges = { rooms = [1, 2], beds = [10], childcare_slots = [500, 10], '
              'floor_area_m2 = ["a", 3] }\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "facilities[0].max_rejected_share = 1.5: expected a share between 0 and 1" in msg
    assert ("facilities[0].ranges.rooms = [1.0, 2.0]: expected a range of one of the numeric fields: "
            "beds") in msg
    assert "facilities[0].ranges.beds = [10.0]: expected two numbers [low, high]" in msg
    assert ("facilities[0].ranges.childcare_slots = [500.0, 10.0]: expected [low, high] with "
            "low <= high") in msg
    assert "facilities[0].ranges.floor_area_m2[0] = 'a': expected a number" in msg


# --------------------------------------------------------------------------------------------
# [units] coords, communities_coords, default_type 区县 (units issue, items 4 and 5)
# --------------------------------------------------------------------------------------------

_UNITS_MINIMAL = MINIMAL.replace('[units]\npath = "units.geojson"\n', "")


def test_units_coords_defaults_and_values(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    u = cfg.units
    assert (u.coords, u.communities_coords, u.community_coords) == ("wgs84", "", "wgs84")
    cfg = load_config(write(tmp_path, _UNITS_MINIMAL + '[units]\npath = "u.json"\ncoords = "gcj02"\n'
                            'default_type = "区县"\ndefault_class = "城区"\n'))
    u = cfg.units
    assert (u.coords, u.community_coords, u.default_type, u.default_class) == (
        "gcj02", "gcj02", "区县", "城区")
    cfg = load_config(write(tmp_path, _UNITS_MINIMAL + '[units]\npath = "u.json"\ncoords = "bd09"\n'
                            'communities_coords = "cgcs2000"\n'))
    assert cfg.units.community_coords == "cgcs2000"


def test_units_coords_and_default_type_validated(tmp_path: Path) -> None:
    p = write(tmp_path, _UNITS_MINIMAL + '[units]\npath = "u.json"\ncoords = "mars"\n'
              'communities_coords = "gcj"\ndefault_type = "区"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "units.coords = 'mars': expected one of 'wgs84', 'cgcs2000', 'gcj02', 'bd09'" in msg
    assert "units.communities_coords = 'gcj': expected one of '', 'wgs84'" in msg
    assert ("units.default_type = '区': expected one of 街道, 镇, 乡, 区县 (区县: a district or county "
            "as one unit)") in msg
    p = write(tmp_path, _UNITS_MINIMAL + '[units]\npath = "bw.osm.pbf"\ncoords = "gcj02"\n')
    with pytest.raises(ConfigError, match=r"units\.coords = 'gcj02': expected 'wgs84' for OSM boundaries"):
        load_config(p)
