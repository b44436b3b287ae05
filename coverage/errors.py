"""One error family (the rasterio pattern): a root the CLI catches, and one class per stage.

``CoverageError`` is the root of every error this package raises on purpose. ``InputError`` means
"your input (config, layer, raster, network file) cannot be used": the CLI prints its message, which
names the file, the value and the fix, and exits 2 without a traceback. ``PipelineError`` means a
stage could not produce its result (a failed QA: a bug rather than bad input).

Each subclass also inherits the builtin it replaces (``ValueError`` / ``RuntimeError``), so callers
that caught the builtin keep working.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "ConfigError",
    "CoverageError",
    "InputError",
    "LayerError",
    "MapsError",
    "NetworkInputError",
    "PipelineError",
    "PopulationError",
    "TileError",
    "user_error_types",
]


class CoverageError(Exception):
    """Root of every error raised on purpose by this package."""


class InputError(CoverageError, ValueError):
    """An input that cannot be used; the message names the file, the value and the fix."""


class ConfigError(InputError):
    """A region config that cannot be used; the message lists every problem."""


class LayerError(InputError):
    """A units or facility layer that cannot be used (the message lists every problem)."""


class NetworkInputError(InputError):
    """A road network source that cannot be used."""


class PopulationError(InputError):
    """Population rasters or census tables that cannot be used."""


class MapsError(InputError):
    """A build folder the maps cannot be drawn from (missing or stale outputs)."""


class PlanningError(InputError):
    """A plan or scenario request that cannot be met (too few sites for a rule, a budget below the
    cheapest option, no candidate, no demand): the message names the conflict and the fix."""


class PipelineError(CoverageError, RuntimeError):
    """A stage could not produce its result from the given inputs (e.g. a failed built-in QA)."""


class ClusterError(CoverageError, RuntimeError):
    """The dask cluster of a tiled run cannot be used (unreachable scheduler, too many workers)."""


class TileError(ClusterError):
    """A tile of a tiled run failed (after its retry); the message names the tile."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean "bad input" (or a failed stage), reported as a message without a
    traceback: this package's root, OS errors, and the I/O errors of the raster and vector readers."""
    from pyogrio.errors import DataLayerError, DataSourceError
    from rasterio.errors import RasterioError

    return (CoverageError, OSError, RasterioError, DataSourceError, DataLayerError)
