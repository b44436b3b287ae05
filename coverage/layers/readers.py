"""Reading layer files into raw rows: vector files and tables as municipalities send them.

Vector files: shapefiles (plain or zipped, with or without ``.cpg``; the attribute encoding is
detected from the bytes when there is no ``.cpg``), GeoPackage, GeoJSON. Tables: CSV/TXT (encoding
and delimiter detected) and XLSX with one or more header rows, and their coordinate columns turned
into points. The result is a :class:`RawLayer`: the attribute rows as read, one geometry per row and
the rows already known to be unusable (bad coordinates); nothing is mapped or projected here.
Whole-file problems raise :class:`~coverage.errors.LayerError` naming the file and the config key.
"""

from __future__ import annotations

import dataclasses
import io
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from coverage.config import FacilityLayerConfig
from coverage.errors import LayerError
from coverage.layers.vocabulary import X_ALIASES, Y_ALIASES, find_column, parse_number

__all__ = [
    "GEOGRAPHIC_AS_WGS84",
    "RawLayer",
    "crs_label",
    "detect_encoding",
    "read_table",
    "read_vector",
    "table_points",
]


#: geographic CRSs read as WGS84 lon/lat without transformation (CGCS2000 and WGS84 differ by cm-dm)
GEOGRAPHIC_AS_WGS84 = {4326, 4490}


@dataclass
class RawLayer:
    """The rows of one layer file as read (before mapping, checking and projecting)."""

    attrs: pd.DataFrame  # original columns, object dtype, RangeIndex
    geoms: list[BaseGeometry | None]
    row_reason: list[str | None]
    crs: CRS | None
    encoding: str
    labels: dict[str, list[str]]
    warnings: list[str] = field(default_factory=list)
    osm_kinds: list[str | None] | None = None
    osm_ids: list[str] | None = None


def crs_label(crs: CRS | None) -> str:
    """``"EPSG:4545"``, or the CRS name when it has no EPSG code, or ``""`` for no CRS."""
    if crs is None:
        return ""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


# --------------------------------------------------------------------------------------------
# Text encodings
# --------------------------------------------------------------------------------------------


def detect_encoding(data: bytes) -> str:
    """Guess the text encoding of attribute bytes: ``utf-8`` when they decode strictly as UTF-8,
    else ``gb18030`` when they decode as GB18030 into mostly CJK text; raises ``ValueError`` otherwise."""
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ValueError(f"neither UTF-8 nor GB18030/GBK ({exc})") from None
    non_ascii = [c for c in text if ord(c) > 127]
    cjk = sum(1 for c in non_ascii if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f"
              or "\uff00" <= c <= "\uffef" or c in "㎡")
    if non_ascii and cjk / len(non_ascii) < 0.8:
        raise ValueError(f"decodes as GB18030 but only {cjk} of {len(non_ascii)} non-ASCII characters "
                         f"are CJK")
    return "gb18030"


def _dbf_parts(dbf: bytes) -> tuple[bytes, bytes]:
    """(field-name bytes, record bytes) of a .dbf; the binary header parts are left out."""
    if len(dbf) < 32:
        raise ValueError("truncated .dbf header")
    header_len = int.from_bytes(dbf[8:10], "little")
    names = b" ".join(dbf[i:i + 11].split(b"\0")[0] for i in range(32, max(32, header_len - 32), 32)
                      if dbf[i:i + 1] not in (b"\r", b""))
    return names, dbf[header_len:].rstrip(b"\x1a")


def _guess_dbf_encoding(dbf: bytes) -> str:
    names, body = _dbf_parts(dbf)
    if not body.isascii():
        return detect_encoding(body)
    # the records tell nothing; try the field names, which are cut at 10 bytes and may end in half a
    # character: drop the trailing partial character of each name before testing
    for enc in ("utf-8", "gb18030"):
        try:
            text = " ".join(part.decode(enc, errors="strict") if part.isascii() else
                            _decode_truncated(part, enc) for part in names.split(b" "))
        except UnicodeDecodeError:
            continue
        if enc == "utf-8" or all(ord(c) < 128 or "\u4e00" <= c <= "\u9fff" for c in text):
            return enc
    return "utf-8"


def _decode_truncated(b: bytes, enc: str) -> str:
    for cut in range(4):
        try:
            return b[: len(b) - cut].decode(enc)
        except UnicodeDecodeError:
            continue
    return b.decode(enc)  # raises


def _dbf_encoding(path: Path, dbf: bytes, cpg: bytes | None, encoding: str, key: str) -> str:
    """Encoding of a shapefile's attribute table: the config's, else the .cpg's, else guessed."""
    if encoding != "auto":
        enc = encoding
    elif cpg is not None and cpg.strip():
        enc = cpg.decode("ascii", errors="ignore").strip() or "utf-8"
        if enc.isdigit():  # ANSI code page numbers such as 936
            enc = {"936": "gbk", "65001": "utf-8", "1252": "cp1252"}.get(enc, "cp" + enc)
    else:
        try:
            enc = _guess_dbf_encoding(dbf)
        except ValueError as exc:
            raise LayerError(f"{path}: cannot tell the text encoding of the attribute table ({exc}); "
                             f"set {key}.encoding = \"gbk\" (or the right one)") from None
    try:
        "".encode(enc)
    except LookupError:
        raise LayerError(f"{path}: unknown encoding {enc!r}; "
                         f"fix {key}.encoding (e.g. \"gbk\", \"utf-8\")") from None
    return enc


# --------------------------------------------------------------------------------------------
# Vector files
# --------------------------------------------------------------------------------------------


def _zip_source(path: Path, layer: str, key: str) -> tuple[str, bytes | None, bytes | None, str]:
    """(GDAL path, dbf bytes, cpg bytes, layer) of the shapefile inside a zip."""
    with zipfile.ZipFile(path) as zf:
        shps = [n for n in zf.namelist() if n.lower().endswith(".shp") and not n.startswith("__MACOSX")]
        if not shps:
            raise LayerError(f"{path}: the zip holds no .shp file (members: {', '.join(zf.namelist()[:10])})")
        if len(shps) > 1 and not layer:
            raise LayerError(f"{path}: the zip holds {len(shps)} shapefiles ({', '.join(shps)}); "
                             f"choose one with {key}.layer = \"<name without .shp>\"")
        shp = next((s for s in shps if Path(s).stem == layer), shps[0]) if layer else shps[0]
        if layer and Path(shp).stem != layer:
            raise LayerError(f"{path}: no shapefile named {layer!r} in the zip (found {', '.join(shps)}); "
                             f"fix {key}.layer")
        base = shp[:-4]
        names = {n.lower(): n for n in zf.namelist()}
        dbf = zf.read(names[(base + ".dbf").lower()]) if (base + ".dbf").lower() in names else None
        cpg = zf.read(names[(base + ".cpg").lower()]) if (base + ".cpg").lower() in names else None
    return f"/vsizip/{path}/{shp}", dbf, cpg, ""


def _vector_source(path: Path, layer: str, key: str) -> tuple[str, bytes | None, bytes | None, str]:
    """(GDAL path, dbf bytes, cpg bytes, layer) for shapefiles (plain or zipped) and other vector files."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _zip_source(path, layer, key)
    if suffix == ".shp":
        dbf_p = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
        cpg_p = next((p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.exists()), None)
        if dbf_p is None:
            raise LayerError(f"{path}: the attribute table {path.with_suffix('.dbf').name} is missing; "
                             f"send all shapefile parts (.shp .shx .dbf .prj)")
        dbf = dbf_p.read_bytes()
        if len(dbf) == 0:
            raise LayerError(f"{path}: the attribute table {dbf_p.name} is empty (0 bytes); "
                             f"re-export the shapefile")
        return str(path), dbf, (cpg_p.read_bytes() if cpg_p else None), ""
    return str(path), None, None, layer


def _decode_latin1(gdf: pd.DataFrame, enc: str) -> pd.DataFrame:
    """Column names and text cells read as latin1 (byte-transparent), decoded as ``enc``."""
    def fix(v: Any) -> Any:
        if not isinstance(v, str):
            return v
        try:  # names cut at 10 bytes may end in half a character: drop it
            return v.encode("latin1").decode(enc, errors="replace").strip().rstrip("\ufffd")
        except UnicodeEncodeError:  # already decoded
            return v

    gdf = gdf.rename(columns={c: fix(c) for c in gdf.columns if c != "geometry"})
    for c in gdf.columns:
        if c != "geometry" and not pd.api.types.is_numeric_dtype(gdf[c]) and \
                not pd.api.types.is_datetime64_any_dtype(gdf[c]):
            gdf[c] = gdf[c].astype(object).map(fix)
    return gdf


def read_vector(path: Path, *, layer: str, encoding: str, key: str) -> RawLayer:
    """Rows of a vector file (shapefile, zipped shapefile, GeoPackage, GeoJSON, ...).

    ``encoding`` is the config's (``"auto"``: .cpg, else detected); ``key`` the config key named in
    messages (``"units"``, ``"facilities[0]"``).
    """
    import pyogrio

    src, dbf, cpg, lyr = _vector_source(path, layer, key)
    enc = "utf-8"
    if dbf is not None:
        enc = _dbf_encoding(path, dbf, cpg, encoding, key)
    elif not lyr:
        try:
            layers = pyogrio.list_layers(src)
        except Exception as exc:  # noqa: BLE001 - GDAL raises many error types
            raise LayerError(f"{path}: cannot be read as a vector file ({exc})") from None
        if len(layers) > 1:
            raise LayerError(f"{path}: holds {len(layers)} layers ({', '.join(str(r[0]) for r in layers)}); "
                             f"choose one with {key}.layer")
    try:
        kw: dict[str, Any] = {"encoding": "latin1"} if dbf is not None else {}
        if lyr:
            kw["layer"] = lyr
        gdf = pyogrio.read_dataframe(src, **kw)
    except Exception as exc:  # noqa: BLE001
        raise LayerError(f"{path}: cannot be read ({exc})") from None
    if dbf is not None:  # read as latin1 (byte-transparent) and decode ourselves
        gdf = _decode_latin1(gdf, enc)
    attrs = pd.DataFrame(gdf.drop(columns="geometry")).astype(object).reset_index(drop=True)
    return RawLayer(attrs=attrs, geoms=list(gdf.geometry.values), row_reason=[None] * len(gdf), crs=gdf.crs,
                    encoding=enc if dbf is not None else "utf-8 (format)",
                    labels={c: [c] for c in attrs.columns}, warnings=[])


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _read_text(path: Path, encoding: str, key: str) -> tuple[str, str]:
    data = path.read_bytes()
    if encoding != "auto":
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise LayerError(f"{path}: cannot decode as {encoding!r} ({exc}); fix {key}.encoding") from None
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    try:
        enc = detect_encoding(data)
    except ValueError as exc:
        raise LayerError(f"{path}: cannot tell the text encoding ({exc}); set {key}.encoding") from None
    return data.decode(enc), enc


def _header(table: pd.DataFrame, header_rows: int) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Build column names from the first ``header_rows`` rows (merged cells forward-filled).

    The name is the last non-empty header cell of the column ("床位情况 / 护理型床位数" -> "护理型床位数");
    alias matching also tries the joined and the first labels.
    """
    if len(table) < header_rows:
        return pd.DataFrame(), {}
    head = table.iloc[:header_rows].astype(object).where(table.iloc[:header_rows].notna(), None)
    rows = []
    for r in range(header_rows):
        vals = [None if v is None or str(v).strip() == "" else str(v).strip() for v in head.iloc[r]]
        if r < header_rows - 1:  # group headers: forward-fill merged cells
            last = None
            for j, v in enumerate(vals):
                if v is None:
                    vals[j] = last
                else:
                    last = v
        rows.append(vals)
    names: list[str] = []
    labels: dict[str, list[str]] = {}
    for j in range(table.shape[1]):
        parts = [v for v in (rows[r][j] for r in range(header_rows)) if v]
        name = parts[-1] if parts else f"column_{j + 1}"
        if name in names:
            name = "/".join(parts) if len(parts) > 1 and "/".join(parts) not in names else f"{name}_{j + 1}"
        names.append(name)
        labels[name] = [parts[-1] if parts else name, "".join(parts), *parts]
    body = table.iloc[header_rows:].reset_index(drop=True)
    body.columns = names
    return body.astype(object), labels


def _read_csv(path: Path, encoding: str, key: str) -> tuple[pd.DataFrame, str]:
    """(cells as text, no header applied; encoding) of a CSV/TXT file, delimiter from the first line."""
    text, enc = _read_text(path, encoding, key)
    if not text.strip():
        raise LayerError(f"{path}: the file has no header and no rows")
    try:
        first = text.lstrip("\ufeff").splitlines()[0]
        sep = max((",", "\t", ";", "|"), key=first.count)  # the delimiter of the header line
        table = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False, sep=sep)
    except Exception as exc:  # noqa: BLE001 - pandas parser errors
        raise LayerError(f"{path}: not a readable CSV ({exc})") from None
    return table, enc


def _read_excel(path: Path, sheet: str, key: str) -> pd.DataFrame:
    """Cells of an Excel sheet (``sheet`` or the first one), no header applied, empty rows dropped."""
    try:
        table = pd.read_excel(path, sheet_name=sheet or 0, header=None, dtype=object)
    except ValueError as exc:
        raise LayerError(f"{path}: sheet {sheet!r} not found ({exc}); fix {key}.layer") from None
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types
        raise LayerError(f"{path}: not a readable Excel file ({exc})") from None
    return table.dropna(how="all").reset_index(drop=True)


def read_table(path: Path, fc: FacilityLayerConfig, key: str) -> RawLayer:
    """Rows of a CSV/TXT/XLSX table below its ``fc.header_rows`` header rows (no geometry yet: see
    :func:`table_points`). Cells are stripped text or numbers; empty cells and rows become None/dropped."""
    if path.suffix.lower() in (".csv", ".txt"):
        table, enc = _read_csv(path, fc.encoding, key)
    else:
        table, enc = _read_excel(path, fc.layer, key), "xlsx (unicode)"
    if table.empty:
        raise LayerError(f"{path}: the file has no header and no rows")
    body, labels = _header(table, fc.header_rows)
    body = body.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                    or (isinstance(v, str) and not v.strip()) else (v.strip() if isinstance(v, str) else v))
    body = body.dropna(how="all").reset_index(drop=True)
    return RawLayer(attrs=body, geoms=[None] * len(body), row_reason=[None] * len(body), crs=None,
                    encoding=enc, labels=labels)


def _gk_hint(x: np.ndarray, lon_hint: float | None) -> str:
    xm = float(np.nanmedian(x))
    zone = int(xm // 1e6)
    if 25 <= zone <= 45:
        return (f"EPSG:{4513 + zone - 25} (CGCS2000 3-degree GK zone {zone}, "
                f"the easting carries the zone number)")
    if lon_hint is not None and 75 <= lon_hint <= 135:
        cm = int(round(lon_hint / 3.0) * 3)
        return f"EPSG:{4534 + (cm - 75) // 3} (CGCS2000 3-degree GK, central meridian {cm}E)"
    return "the file's projected CRS (e.g. EPSG:4545)"


def _coordinate_columns(raw: RawLayer, fc: FacilityLayerConfig, key: str, path: Path) -> tuple[str, str]:
    """(x column, y column): the configured ones, else found by :data:`X_ALIASES` / :data:`Y_ALIASES`."""
    cols = list(raw.attrs.columns)
    xc = fc.x_field or find_column(raw.labels, X_ALIASES)
    yc = fc.y_field or find_column(raw.labels, Y_ALIASES)
    problems = []
    if fc.x_field and fc.x_field not in cols:
        problems.append(f"{key}.x_field = {fc.x_field!r} is not a column")
    if fc.y_field and fc.y_field not in cols:
        problems.append(f"{key}.y_field = {fc.y_field!r} is not a column")
    if not problems and (xc is None or yc is None):
        problems.append("no coordinate columns found (looked for 经度/纬度, lon/lat, lng, "
                        "longitude/latitude, "
                        f"x/y, 东坐标/北坐标); set {key}.x_field and {key}.y_field")
    if problems or xc is None or yc is None:
        raise LayerError(f"{path}: " + "; ".join(problems) + f" (columns: {', '.join(map(str, cols))})")
    return xc, yc


def table_points(raw: RawLayer, fc: FacilityLayerConfig, key: str, path: Path,
                 lon_hint: float | None) -> RawLayer:
    """``raw`` with a point per row from its coordinate columns, the CRS (``fc.crs`` or EPSG:4326) and
    rows with non-numeric or missing coordinates marked. Raises when the coordinates contradict the
    CRS (projected numbers read as degrees or the reverse), suggesting the Gauss-Kruger zone."""
    xc, yc = _coordinate_columns(raw, fc, key, path)
    crs = CRS.from_user_input(fc.crs) if fc.crs else CRS.from_epsg(4326)
    xs = [parse_number(v) for v in raw.attrs[xc]]
    ys = [parse_number(v) for v in raw.attrs[yc]]
    x = np.array([math.nan if v is None else v for v in xs], dtype=float)
    y = np.array([math.nan if v is None else v for v in ys], dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.any():
        looks_projected = np.nanmedian(np.abs(np.where(finite, x, np.nan))) > 360 or \
            np.nanmedian(np.abs(np.where(finite, y, np.nan))) > 360
        if crs.is_geographic and looks_projected:
            raise LayerError(f"{path}: coordinates {xc}/{yc} look projected (median x "
                             f"{np.nanmedian(x[finite]):.0f}), not degrees; set {key}.crs = "
                             f"{_gk_hint(x[finite], lon_hint)}")
        if crs.is_projected and not looks_projected:
            raise LayerError(f"{path}: coordinates {xc}/{yc} look like degrees but {key}.crs = {fc.crs!r} is "
                             f"projected; remove {key}.crs or give the geographic CRS")
    geoms = list(raw.geoms)
    reasons = list(raw.row_reason)
    for i in range(len(x)):
        if xs[i] is None or ys[i] is None:
            reasons[i] = "non-numeric coordinates"
        elif not finite[i]:
            reasons[i] = "missing coordinates"
        else:
            geoms[i] = shapely.Point(x[i], y[i])
    return dataclasses.replace(raw, crs=crs, geoms=geoms, row_reason=reasons)
