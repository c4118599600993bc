"""``retail-export``: model export and signed bundles.

Not built yet (issue 6): the entry point says so with exit code 2 instead of failing.
"""

from __future__ import annotations

import argparse
import sys

WHAT = "model export and signed bundles"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and report that the commands do not exist yet (exit code 2)."""
    parser = argparse.ArgumentParser(
        prog="retail-export", description=f"Retail CV: {WHAT}. Not built yet (issue 6)."
    )
    parser.parse_args(argv)
    print(
        f"error: retail-export has no commands yet: {WHAT} is not built (issue 6)", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
