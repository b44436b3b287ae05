"""一老一小 service-coverage analyzer: road-network travel times, isochrones, population coverage
and standards checks per 街道/乡镇.

Note: the import name ``coverage`` is shared with coverage.py; never install coverage.py or pytest-cov
into this project's environment.
"""

__version__ = "0.1.0"
