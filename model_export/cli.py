"""``retail-export``: offline model tooling.

Command groups: ``classifier`` (product recognition: train, eval, add-product). Signed model
bundles (issue 6) are not built yet.
"""

from __future__ import annotations

import argparse
import logging
import sys

from model_export.classifier import cli as classifier_cli


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command group."""
    parser = argparse.ArgumentParser(prog="retail-export", description="Retail CV model tooling.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    groups = parser.add_subparsers(dest="group", required=True)
    classifier_cli.add_parser(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the command, return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.group == "classifier":
        return classifier_cli.run(args)
    raise AssertionError(f"unhandled command group {args.group!r}")


if __name__ == "__main__":
    sys.exit(main())
