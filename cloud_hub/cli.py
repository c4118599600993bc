"""``retail-hub``: the HQ hub (API, ingest, dashboard).

Not built yet (issue 5): the entry point says so with exit code 2 instead of failing.
"""

from __future__ import annotations

import argparse
import sys

WHAT = "the HQ hub (API, ingest, dashboard)"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and report that the commands do not exist yet (exit code 2)."""
    parser = argparse.ArgumentParser(
        prog="retail-hub", description=f"Retail CV: {WHAT}. Not built yet (issue 5)."
    )
    parser.parse_args(argv)
    print(f"error: retail-hub has no commands yet: {WHAT} is not built (issue 5)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
