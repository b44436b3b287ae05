"""Re-fetch the JavaScript/CSS assets vendored under ``coverage/assets/`` (offline maps).

The gap maps must open with no network, so Leaflet is copied next to every page from
``coverage/assets/``. This script is how those files were obtained: it runs ``npm pack`` (the npm
registry, the ordinary client) for each pinned package, extracts only the files the pages need,
checks their sha256 against the pinned values below and rewrites ``coverage/assets/README.md``.

Usage::

    python scripts/vendor_assets.py            # fetch, verify, copy
    python scripts/vendor_assets.py --check    # only verify the committed files

A sha256 mismatch after a fetch means the registry served different bytes for a pinned version:
the script stops and copies nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "coverage" / "assets"

#: package, version, license, {path inside the npm tarball: (path under coverage/assets, sha256)}
PACKAGES: list[tuple[str, str, str, dict[str, tuple[str, str]]]] = [
    ("leaflet", "1.9.4", "BSD-2-Clause", {
        "package/dist/leaflet.js": (
            "leaflet/leaflet.js", "db49d009c841f5ca34a888c96511ae936fd9f5533e90d8b2c4d57596f4e5641a"),
        "package/dist/leaflet.css": (
            "leaflet/leaflet.css", "a7837102824184820dfa198d1ebcd109ff6d0ff9a2672a074b9a1b4d147d04c6"),
        "package/dist/images/layers.png": (
            "leaflet/images/layers.png", "1dbbe9d028e292f36fcba8f8b3a28d5e8932754fc2215b9ac69e4cdecf5107c6"),
        "package/dist/images/layers-2x.png": (
            "leaflet/images/layers-2x.png", "066daca850d8ffbef007af00b06eac0015728dee279c51f3cb6c716df7c42edf"),
        "package/LICENSE": ("leaflet/LICENSE", "53e8dc25862014e4324741ca18fbe3611e11d42ef69f59f86ea8c5389647d4cb"),
    }),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _readme() -> str:
    lines = [
        "# Vendored assets (offline maps)",
        "",
        "Copied next to every page under `maps/<region>/assets/` by `coverage.maps`; referenced by",
        "relative URLs so the pages work with no network. Re-fetch with `python scripts/vendor_assets.py`",
        "(npm registry, `npm pack`); verify with `python scripts/vendor_assets.py --check`.",
        "",
        "The pages are folium maps; `coverage.maps` replaces folium's CDN defaults (leaflet, jquery,",
        "bootstrap, awesome-markers, font-awesome) per map with these local files, and no page needs the others.",
        "`coverage-map.js` (legend switching, table sorting) and `coverage-map.css` are this project's own code.",
        "",
        "| file | package | version | license | sha256 |",
        "|---|---|---|---|---|",
    ]
    for name, version, lic, files in PACKAGES:
        for (dst, _pin) in files.values():
            p = ASSETS / dst
            lines.append(f"| `{dst}` | {name} | {version} | {lic} | `{sha256(p)}` |")
    return "\n".join(lines) + "\n"


def check() -> list[str]:
    """Problems with the committed files (missing, or not the pinned bytes)."""
    problems = []
    for name, version, _lic, files in PACKAGES:
        for (dst, pin) in files.values():
            p = ASSETS / dst
            if not p.is_file():
                problems.append(f"{p}: missing (run python scripts/vendor_assets.py)")
            elif pin and sha256(p) != pin:
                problems.append(f"{p}: sha256 {sha256(p)} is not the pinned {pin} of {name}@{version}")
    return problems


def fetch() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        staged: list[tuple[bytes, Path]] = []
        for name, version, _lic, files in PACKAGES:
            out = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            with tarfile.open(Path(tmp) / out) as tar:
                for src, (dst, pin) in files.items():
                    member = tar.extractfile(src)
                    if member is None:
                        raise SystemExit(f"{name}@{version}: {src} not in the package")
                    data = member.read()
                    got = hashlib.sha256(data).hexdigest()
                    if pin and got != pin:
                        raise SystemExit(f"{name}@{version}: {src} sha256 {got} != pinned {pin}; nothing copied")
                    staged.append((data, ASSETS / dst))
        for data, target in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    (ASSETS / "README.md").write_text(_readme(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only verify the committed files")
    args = ap.parse_args(argv)
    if not args.check:
        fetch()
    problems = check()
    for p in problems:
        sys.stderr.write(p + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
