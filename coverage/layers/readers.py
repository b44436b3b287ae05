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
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from coverage.config import FacilityLayerConfig
from coverage.errors import LayerError
from coverage.layers.vocabulary import LOCATION_ALIASES, X_ALIASES, Y_ALIASES, find_column, parse_number

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
    #: where each row came from in a workbook: "<sheet>:<Excel row>" (None for other formats)
    row_labels: list[str] | None = None
    #: the workbook sheets the rows were read from (empty for other formats)
    sheets: list[str] = field(default_factory=list)


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


def _check_cpg(path: Path, dbf: bytes, enc: str, cpg_text: str, key: str) -> None:
    """Raise when the records do not decode in the .cpg's encoding but do as GBK/GB18030."""
    _, body = _dbf_parts(dbf)
    try:
        body.decode(enc)
        return
    except UnicodeDecodeError as exc:
        bad = body[max(0, exc.start - 4): exc.start + 6]
    except LookupError:
        return  # reported as an unknown encoding below
    try:
        other = detect_encoding(body)
    except ValueError:
        return  # neither: the mojibake check after decoding names the encoding key
    sample = next((t for t in body.decode(other).split() if not t.isascii()), "")[:20]
    raise LayerError(f"{path}: the .cpg file says {cpg_text!r} but the attribute table is not {enc} text "
                     f"(bytes {bad!r}); it reads as GBK/GB18030 (e.g. {sample!r}): the .cpg is wrong; "
                     f"delete {path.with_suffix('.cpg').name} or set {key}.encoding = \"gbk\"")


def _dbf_encoding(path: Path, dbf: bytes, cpg: bytes | None, encoding: str, key: str) -> str:
    """Encoding of a shapefile's attribute table: the config's, else the .cpg's (checked against the
    bytes), else guessed."""
    if encoding != "auto":
        enc = encoding
    elif cpg is not None and cpg.strip():
        cpg_text = cpg.decode("ascii", errors="ignore").strip()
        enc = cpg_text or "utf-8"
        if enc.isdigit():  # ANSI code page numbers such as 936
            enc = {"936": "gbk", "65001": "utf-8", "1252": "cp1252"}.get(enc, "cp" + enc)
        _check_cpg(path, dbf, enc, cpg_text, key)
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


#: encodings to suggest when text comes out garbled
ENCODINGS_TO_TRY = ("gbk", "gb18030", "utf-8")
#: UTF-8 read as Latin-1 / cp1252: a lead byte (Â..ô) followed by a continuation byte shown as a Latin-1
#: symbol or a cp1252 punctuation mark ("å…»", "Ã©"); German or French words never have these pairs
_LATIN_SOUP = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
                         "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030"
                         "\u2039\u203a\u20ac\u2122]")
#: below this share of common characters (see :func:`mojibake_problem`) Chinese text is garbled
_COMMON_CJK_MIN_SHARE = 0.45
_CJK_MIN_CHARS = 10


def _is_wide(c: str) -> bool:
    """A character of the wide (CJK-like) planes where GBK/UTF-8 mix-ups land."""
    o = ord(c)
    return 0x2E80 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xE000 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF


def _is_common(c: str) -> bool:
    """A GB2312 level-1 hanzi (the 3755 most used, ~99.7 % of running Chinese text) or a GB2312
    symbol (rows A1-A9: 、。《》（）㎡ and full-width forms)."""
    try:
        b = c.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return len(b) == 2 and (0xB0 <= b[0] <= 0xD7 or 0xA1 <= b[0] <= 0xA9)


def mojibake_problem(texts: Iterable[str]) -> str | None:
    """Why decoded text looks garbled (mojibake), or None.

    Three signs, tested on all the text of a layer (column names and cells): U+FFFD replacement
    characters (bytes that did not decode); UTF-8 read as Latin-1/cp1252 ("å…»è€�é™¢" for 养老院);
    implausible Chinese: of the CJK-plane characters fewer than 45 % are common characters (real
    names and addresses score above 55 % even when full of rare place-name characters; UTF-8 read as
    GBK, "鍏昏€侀櫌", scores 10-35 %).
    """
    fffd = wide = common = 0
    soup: list[str] = []
    examples: list[str] = []
    for t in texts:
        if not isinstance(t, str) or t.isascii():
            continue
        k = t.count("\ufffd")
        if k and len(examples) < 3:
            examples.append(t[:30])
        fffd += k
        soup.extend(_LATIN_SOUP.findall(t))
        w = [c for c in t if _is_wide(c)]
        wide += len(w)
        common += sum(1 for c in w if _is_common(c))
        if len(soup) >= 2 and not examples:
            examples.append(t[:30])
    if fffd:
        return (f"{fffd} undecodable byte(s) shown as U+FFFD (e.g. "
                f"{', '.join(repr(e) for e in examples)})")
    if len(soup) >= 2:
        return (f"UTF-8 text read as Latin-1 ({len(soup)} pairs such as {soup[0]!r}; e.g. "
                f"{', '.join(repr(e) for e in examples)})")
    if wide >= _CJK_MIN_CHARS and common / wide < _COMMON_CJK_MIN_SHARE:
        return (f"implausible Chinese: only {common} of {wide} characters are common ones "
                f"(real names score above {_COMMON_CJK_MIN_SHARE:.0%})")
    return None


def _texts(df: pd.DataFrame) -> list[str]:
    """Column names and text cells of a table."""
    out = [str(c) for c in df.columns]
    for c in df.columns:
        out.extend(v for v in df[c].tolist() if isinstance(v, str))
    return out


def _encodings_hint(key: str, used: str) -> str:
    norm = used.lower().replace("-", "").replace("_", "").replace("sig", "")
    others = [e for e in ENCODINGS_TO_TRY if e.replace("-", "") != norm]
    return f"set {key}.encoding to the file's encoding (try " + ", ".join(f'"{e}"' for e in others) + ")"


#: dBASE version bytes of the files shapefile writers produce (dBASE III/IV/5, FoxPro, Visual FoxPro)
_DBF_VERSIONS = {0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0xCB, 0xF5, 0xFB}


def _check_dbf(path: Path, name: str, dbf: bytes) -> None:
    """Raise unless ``dbf`` is a plausible, complete dBASE table (header, field descriptors, records)."""
    fix = "re-export the shapefile and send all its parts (.shp .shx .dbf .prj)"
    if len(dbf) < 33 or dbf[0] not in _DBF_VERSIONS:
        raise LayerError(f"{path}: {name} is not a valid dBASE file (first byte 0x{dbf[0]:02x}, "
                         f"{len(dbf)} bytes); {fix}")
    n_rec = int.from_bytes(dbf[4:8], "little")
    header_len = int.from_bytes(dbf[8:10], "little")
    rec_len = int.from_bytes(dbf[10:12], "little")
    end = next((i for i in range(32, min(header_len, len(dbf)), 32) if dbf[i] == 0x0D), None)
    widths = sum(dbf[i + 16] for i in range(32, end or 32, 32))
    if header_len < 33 or rec_len < 1 or end is None or widths + 1 != rec_len:
        raise LayerError(f"{path}: {name} is not a valid dBASE file (header length {header_len}, record "
                         f"length {rec_len}, field widths {widths}); {fix}")
    expected = header_len + n_rec * rec_len
    if len(dbf) < expected:
        raise LayerError(f"{path}: {name} is truncated: its header promises {n_rec} records "
                         f"({expected} bytes) but the file has {len(dbf)} bytes; {fix}")


def _check_shp_header(path: Path, name: str, head: bytes, size: int) -> None:
    """Raise unless ``head`` (the first 100 bytes) is a shapefile header whose length matches ``size``."""
    fix = "re-export the shapefile and send all its parts again (.shp .shx .dbf .prj)"
    code = int.from_bytes(head[0:4], "big") if len(head) >= 4 else None
    declared = int.from_bytes(head[24:28], "big") * 2 if len(head) >= 28 else 0
    if code == 9994 and size < declared:
        raise LayerError(f"{path}: {name} is truncated: its header says {declared} bytes but the file has "
                         f"{size} bytes ({size * 100 // max(declared, 1)} %); the rows past the cut would "
                         f"have no geometry; {fix}")
    if size < 100 or code != 9994:
        raise LayerError(f"{path}: {name} is not a valid shapefile main file ({size} bytes, file code "
                         f"{code if code is not None else '-'}, expected 9994); {fix}")


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
        with zf.open(shp) as fh:
            _check_shp_header(path, shp, fh.read(100), zf.getinfo(shp).file_size)
        names = {n.lower(): n for n in zf.namelist()}
        dbf = zf.read(names[(base + ".dbf").lower()]) if (base + ".dbf").lower() in names else None
        cpg = zf.read(names[(base + ".cpg").lower()]) if (base + ".cpg").lower() in names else None
        if dbf is not None:
            _check_dbf(path, base + ".dbf", dbf)
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
        _check_dbf(path, dbf_p.name, dbf)
        with path.open("rb") as fh:
            _check_shp_header(path, path.name, fh.read(100), path.stat().st_size)
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
    garbled = mojibake_problem(_texts(attrs))
    if garbled:
        source = ("the config" if encoding != "auto" else f"the .cpg file ({cpg!r})" if cpg and cpg.strip()
                  else "detected from the bytes") if dbf is not None else "the format's (UTF-8)"
        fix = _encodings_hint(key, enc)
        if dbf is not None and cpg and cpg.strip() and encoding == "auto":
            fix = f"delete the .cpg file or {fix}"
        raise LayerError(f"{path}: the attribute text looks garbled (mojibake) when read as {enc} "
                         f"(encoding from {source}): {garbled}; {fix}")
    return RawLayer(attrs=attrs, geoms=list(gdf.geometry.values), row_reason=[None] * len(gdf), crs=gdf.crs,
                    encoding=enc if dbf is not None else "utf-8 (format)",
                    labels={c: [c] for c in attrs.columns}, warnings=[])


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _read_text(path: Path, encoding: str, key: str) -> tuple[str, str]:
    data = path.read_bytes()
    if encoding != "auto":
        if data.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("-", "").replace("_", "") \
                not in ("utf8", "utf8sig"):
            data = data[3:]  # a UTF-8 BOM in front of GBK rows (appended by another tool)
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
    garbled = mojibake_problem(text.splitlines())
    if garbled:
        source = "the config" if encoding != "auto" else ("the UTF-8 BOM" if enc == "utf-8-sig" else
                                                          "detected from the bytes")
        raise LayerError(f"{path}: the text looks garbled (mojibake) when read as {enc} (encoding from "
                         f"{source}): {garbled}; {_encodings_hint(key, enc)}")
    try:
        first = text.lstrip("\ufeff").splitlines()[0]
        sep = max((",", "\t", ";", "|"), key=first.count)  # the delimiter of the header line
        table = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False, sep=sep)
    except Exception as exc:  # noqa: BLE001 - pandas parser errors
        raise LayerError(f"{path}: not a readable CSV ({exc})") from None
    return table, enc


def _read_workbook(path: Path, key: str) -> dict[str, pd.DataFrame]:
    """Every sheet of an XLSX workbook: cells, no header applied, empty rows dropped (the index is
    the 0-based Excel row)."""
    with path.open("rb") as fh:
        head = fh.read(8)
    fix = "open it in Excel/WPS and save it as .xlsx (Excel Workbook)"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise LayerError(f"{path}: an old Excel 97-2003 (.xls) workbook, which is not read here; {fix}, "
                         f"then point {key}.path at the .xlsx")
    if not zipfile.is_zipfile(path):
        raise LayerError(f"{path}: not a valid XLSX workbook (an .xlsx is a zip archive; this file starts "
                         f"with {head!r}); {fix}, or if it is a CSV give it the .csv suffix")
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types
        raise LayerError(f"{path}: not a valid XLSX workbook ({type(exc).__name__}: {exc}); {fix}") from None
    return {str(n): t.dropna(how="all") for n, t in sheets.items()}


def _clean_body(body: pd.DataFrame) -> pd.DataFrame:
    body = body.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                    or (isinstance(v, str) and not v.strip()) else (v.strip() if isinstance(v, str) else v))
    return body.dropna(how="all")


def _find_xy(columns: list[str], labels: dict[str, list[str]], fc: FacilityLayerConfig
             ) -> tuple[str, str] | None:
    """(x column, y column) by config or aliases, or None."""
    xc = fc.x_field if fc.x_field in columns else None if fc.x_field else find_column(labels, X_ALIASES)
    yc = fc.y_field if fc.y_field in columns else None if fc.y_field else find_column(labels, Y_ALIASES)
    if (xc is None or yc is None) and not fc.x_field and not fc.y_field:
        loc = find_column(labels, LOCATION_ALIASES)
        if loc is not None:
            return loc, loc
    return (xc, yc) if xc is not None and yc is not None else None


def _header_row_hint(table: pd.DataFrame, fc: FacilityLayerConfig, key: str, where: str) -> str:
    """A hint naming ``header_rows`` when the coordinate headers sit on a later row of ``table``."""
    for r in range(fc.header_rows, min(len(table), fc.header_rows + 8)):
        cells = [str(v).strip() for v in table.iloc[r].tolist() if v is not None and not
                 (isinstance(v, float) and math.isnan(v))]
        labs = {c: [c] for c in cells}
        if find_column(labs, X_ALIASES) and find_column(labs, Y_ALIASES):
            return (f"the column headers ({', '.join(cells[:8])}) are on row {r + 1}{where}, below "
                    f"{r} title/merged row(s): set {key}.header_rows = {r + 1}")
    return ""


def _pick_sheets(path: Path, sheets: dict[str, pd.DataFrame], fc: FacilityLayerConfig, key: str
                 ) -> tuple[list[str], list[str]]:
    """(sheets to read, warnings): ``fc.sheet`` (or the legacy ``fc.layer``), else every sheet whose
    header equals the first data sheet's (a data sheet has coordinate columns); notes sheets are skipped
    and named; a data sheet with another header, or a sheet of rows without a header, is an error."""
    names = list(sheets)
    listing = ", ".join(repr(n) for n in names)
    wanted = fc.sheet or fc.layer
    if wanted:
        if wanted not in sheets:
            raise LayerError(f"{path}: no sheet {wanted!r} in the workbook (sheets: {listing}); fix "
                             f"{key}.sheet")
        return [wanted], []
    heads: dict[str, tuple[list[str], tuple[str, str] | None]] = {}
    for n, t in sheets.items():
        if t.empty:
            continue
        body, labels = _header(t.reset_index(drop=True), fc.header_rows)
        heads[n] = (list(body.columns), _find_xy(list(body.columns), labels, fc))
    data = [n for n, (_, xy) in heads.items() if xy is not None]
    if not data:
        if len(heads) <= 1:  # one sheet: the single-table messages apply
            return list(heads) or names[:1], []
        hints = [h for n in heads if (h := _header_row_hint(sheets[n].reset_index(drop=True), fc, key,
                                                             f" of sheet {n!r}"))]
        cols = "; ".join(f"sheet {n!r}: {', '.join(c[:8])}" for n, (c, _) in heads.items())
        raise LayerError(f"{path}: no sheet has coordinate columns (经度/纬度, lon/lat, x/y) with "
                         f"{key}.header_rows = {fc.header_rows} ({cols}); "
                         + ("; ".join(hints) + "; " if hints else "")
                         + f"choose the sheet with {key}.sheet, the number of header rows with "
                           f"{key}.header_rows, or the columns with {key}.x_field / {key}.y_field")
    first = data[0]
    cols0, xy0 = heads[first]
    same = [n for n in data if heads[n][0] == cols0]
    other = [n for n in data if n not in same]
    if other:
        raise LayerError(f"{path}: sheets {', '.join(repr(n) for n in [first, *other])} all have coordinate "
                         f"columns but different header rows (sheets: {listing}); read one sheet per "
                         f"[[facilities]] entry with {key}.sheet = \"<sheet name>\", or give the sheets "
                         f"the same header row")
    warnings = []
    xcol, ycol = cast(tuple[str, str], xy0)  # a data sheet has its coordinate columns
    xi, yi = cols0.index(xcol), cols0.index(ycol)
    for n in heads:
        if n in same:
            continue
        row1 = sheets[n].iloc[0].tolist()
        vx, vy = (parse_number(row1[i]) if i < len(row1) else None for i in (xi, yi))
        if vx is not None and vy is not None and math.isfinite(vx) and math.isfinite(vy):
            raise LayerError(f"{path}: sheet {n!r} has no header row but numbers where sheet {first!r} has "
                             f"its coordinates ({xcol}/{ycol}): its rows look like a continuation of "
                             f"{first!r}; copy the header row of {first!r} onto it (then both are read), or "
                             f"set {key}.sheet = {first!r} to read only that sheet (sheets: {listing})")
        warnings.append(f"sheet {n!r} skipped: no coordinate columns (a notes sheet?); read sheet(s) "
                        f"{', '.join(repr(m) for m in same)}; choose another with {key}.sheet")
    return same, warnings


def read_table(path: Path, fc: FacilityLayerConfig, key: str) -> RawLayer:
    """Rows of a CSV/TXT/XLSX table below its ``fc.header_rows`` header rows (no geometry yet: see
    :func:`table_points`). Cells are stripped text or numbers; empty cells and rows become None/dropped.

    XLSX: ``fc.sheet``, else every sheet with the first data sheet's header (rows concatenated, each
    row labelled ``"<sheet>:<Excel row>"`` in :attr:`RawLayer.row_labels`)."""
    if path.suffix.lower() in (".csv", ".txt"):
        table, enc = _read_csv(path, fc.encoding, key)
        if table.empty:
            raise LayerError(f"{path}: the file has no header and no rows")
        body, labels = _header(table, fc.header_rows)
        body = _clean_body(body).reset_index(drop=True)
        return RawLayer(attrs=body, geoms=[None] * len(body), row_reason=[None] * len(body), crs=None,
                        encoding=enc, labels=labels)
    sheets = _read_workbook(path, key)
    chosen, warnings = _pick_sheets(path, sheets, fc, key)
    bodies, row_labels, labels = [], [], {}
    for n in chosen:
        t = sheets[n]
        if t.empty:
            continue
        excel_rows = [int(i) + 1 for i in t.index[fc.header_rows:]]
        body, lab = _header(t.reset_index(drop=True), fc.header_rows)
        body.index = excel_rows[: len(body)]
        body = _clean_body(body)
        labels = labels or lab
        bodies.append(body)
        row_labels += [f"{n}:{r}" for r in body.index]
    if not bodies:
        raise LayerError(f"{path}: the file has no header and no rows (sheet(s) {', '.join(chosen)})")
    cols = list(bodies[0].columns)
    body = pd.concat([b.set_axis(cols, axis=1) for b in bodies], ignore_index=True).astype(object)
    garbled = mojibake_problem(_texts(body))
    if garbled:
        raise LayerError(f"{path}: the workbook's text is already garbled (mojibake): {garbled}; the "
                         f"cells were pasted or imported with the wrong encoding: re-import the source "
                         f"CSV in Excel/WPS choosing its encoding (try {', '.join(ENCODINGS_TO_TRY)})")
    if len(chosen) > 1:
        warnings.insert(0, f"read {len(chosen)} sheets with the same header: "
                           + ", ".join(f"{n!r} ({sum(1 for r in row_labels if r.startswith(n + ':'))} rows)"
                                       for n in chosen))
    return RawLayer(attrs=body, geoms=[None] * len(body), row_reason=[None] * len(body), crs=None,
                    encoding="xlsx (unicode)", labels=labels, warnings=warnings, row_labels=row_labels,
                    sheets=chosen)


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
    """(x column, y column): the configured ones, else found by :data:`X_ALIASES` / :data:`Y_ALIASES`,
    else one ``location`` / ``经纬度`` column holding "lon,lat" (returned as (column, column))."""
    cols = list(raw.attrs.columns)
    xc = fc.x_field or find_column(raw.labels, X_ALIASES)
    yc = fc.y_field or find_column(raw.labels, Y_ALIASES)
    if (xc is None or yc is None) and not fc.x_field and not fc.y_field:
        loc = find_column(raw.labels, LOCATION_ALIASES)
        if loc is not None:
            xc = yc = loc
    problems = []
    if fc.x_field and fc.x_field not in cols:
        problems.append(f"{key}.x_field = {fc.x_field!r} is not a column")
    if fc.y_field and fc.y_field not in cols:
        problems.append(f"{key}.y_field = {fc.y_field!r} is not a column")
    if not problems and (xc is None or yc is None):
        where = f" of sheet {raw.sheets[0]!r}" if raw.sheets else ""
        above = pd.DataFrame([[None] * raw.attrs.shape[1]] * fc.header_rows)
        hint = _header_row_hint(pd.concat([above, raw.attrs.set_axis(range(raw.attrs.shape[1]), axis=1)],
                                          ignore_index=True), fc, key, where)
        problems.append("no coordinate columns found (looked for 经度/纬度, lon/lat, lng, "
                        "longitude/latitude, location/经纬度 as \"lon,lat\", "
                        f"x/y, 东坐标/北坐标){where} with {key}.header_rows = {fc.header_rows}; "
                        + (hint + "; or " if hint else "")
                        + f"set {key}.x_field and {key}.y_field"
                        + (f" (or choose the sheet with {key}.sheet)" if raw.sheets else ""))
    if problems or xc is None or yc is None:
        raise LayerError(f"{path}: " + "; ".join(problems) + f" (columns: {', '.join(map(str, cols))})")
    return xc, yc


def _split_location(v: Any) -> tuple[float | None, float | None]:
    """A "lon,lat" cell as two numbers (``"108.0123,31.9876"``; full-width comma, ";" or spaces also
    separate); (NaN, NaN) when empty, (None, None) when it is not two numbers."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip():
        return math.nan, math.nan
    parts = [p for p in re.split(r"[,，;；\s]+", str(v).strip().strip("[]()（）")) if p]
    if len(parts) != 2:
        return None, None
    return parse_number(parts[0]), parse_number(parts[1])


def table_points(raw: RawLayer, fc: FacilityLayerConfig, key: str, path: Path,
                 lon_hint: float | None) -> RawLayer:
    """``raw`` with a point per row from its coordinate columns, the CRS (``fc.crs`` or EPSG:4326) and
    rows with non-numeric or missing coordinates marked. Raises when the coordinates contradict the
    CRS (projected numbers read as degrees or the reverse), suggesting the Gauss-Kruger zone."""
    xc, yc = _coordinate_columns(raw, fc, key, path)
    crs = CRS.from_user_input(fc.crs) if fc.crs else CRS.from_epsg(4326)
    if xc == yc:  # one "lon,lat" column (Amap web-API exports: location = "108.0123,31.9876")
        pairs = [_split_location(v) for v in raw.attrs[xc]]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
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
