"""``python -m coverage``: the CLI; an interrupt anywhere, start-up imports included, ends in one line."""

import sys

try:
    from coverage.cli import main

    code = main()
except KeyboardInterrupt:
    print("interrupted; no partial outputs were kept (the previous results are untouched)", file=sys.stderr)
    code = 130
raise SystemExit(code)
