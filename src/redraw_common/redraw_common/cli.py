"""The top-level handler every redraw command-line tool wraps its main(argv) in.

    @entry_point("convert-bags")
    def main(argv=None) -> int: ...

A user error (any RedrawInputError: a bad file, parameter, checkpoint or path) prints `PROG: error: ...` (argparse's
form) and exits 2, or a CommandError's own code;
Ctrl-C exits 130; anything else is a bug: one line naming it and the file its traceback was written to, exit 1.
No user ever sees a raw traceback.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
import tempfile
import traceback
from collections.abc import Callable

from .errors import RedrawInputError

EXIT_USER_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130


class CommandError(RedrawInputError):
    """Raised by a CLI for a refusal of its own (`raise CommandError("--out exists")`); `code` is its exit status."""

    def __init__(self, message: str, code: int = EXIT_USER_ERROR):
        super().__init__(message)
        self.code = code


def number(cast: type = float, *, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """An argparse `type=` that parses with `cast` and checks the range, so a bad value is refused by argparse as
    `PROG: error: argument --control-hz: must be in (0, 100], found -5`."""
    lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
    hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
    wanted = (f"in {lo}, {hi}" if low is not None and high is not None
              else f"{'>' if low_open else '>='} {low:g}" if low is not None else f"{'<' if high_open else '<='} {high:g}")

    def parse(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if cast is int else 'a number'} {wanted}, found {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or value != value:      # NaN is in no range
            raise argparse.ArgumentTypeError(f"must be {wanted}, found {text}")
        return value
    parse.__name__ = cast.__name__
    return parse


def renamed(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Refuse a retired flag with the name that replaced it (`new`: the flag, and what it perturbs / means):
    `PROG: error: --perturb was renamed: use --eval-perturb (the evaluation env)`, exit 2. Hidden from --help."""

    class Renamed(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"{old} was renamed: use {new}")

    parser.add_argument(old, action=Renamed, nargs="?", help=argparse.SUPPRESS)


def entry_point(prog: str) -> Callable[[Callable[[list[str] | None], int]], Callable[[list[str] | None], int]]:
    def wrap(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            except RedrawInputError as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return exc.code if isinstance(exc, CommandError) else EXIT_USER_ERROR
            except Exception as exc:
                stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
                with tempfile.NamedTemporaryFile("w", prefix=f"redraw-{prog}-{stamp}-", suffix=".traceback.txt", delete=False) as f:
                    f.write(f"{prog} {' '.join(sys.argv[1:] if argv is None else argv)}\n")
                    traceback.print_exc(file=f)
                print(f"{prog}: error: failed unexpectedly: {type(exc).__name__}: {exc} (traceback in {f.name}; please report it)",
                      file=sys.stderr)
                return EXIT_BUG
        return run
    return wrap
