"""The one exit-code convention of every stage's ``main()``: bad input or bad params → exit code 2 and one line
``error: <message>`` on stderr, no traceback.

"Bad input or params" is :class:`~pipeline.core.params.ConfigError` (params), :class:`~pipeline.core.io.InputError`
(data files) and :class:`FileNotFoundError` (a missing input); a stage whose validation raises other types
(``ValueError`` from a library check, its own error class) names them in :func:`stage_main`. Anything else is a
bug and keeps its traceback (Python's exit code 1). argparse's own usage errors already exit with 2.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

from pipeline.core.io import InputError
from pipeline.core.params import ConfigError

EXIT_BAD_INPUT = 2

#: Exceptions that mean "the user's input or params are wrong", for every stage.
BAD_INPUT: tuple[type[BaseException], ...] = (ConfigError, InputError, FileNotFoundError)

Main = TypeVar("Main", bound=Callable[..., "int | None"])


def error_line(exc: BaseException) -> str:
    """``error: <message>`` on one line (a multi-line message is joined with ``; ``, so stderr gets one line)."""
    parts = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "error: " + ("; ".join(parts) or type(exc).__name__)


def run_main(body: Callable[[], "int | None"], *extra: type[BaseException]) -> int:
    """Run ``body`` and return its exit code (``None`` → 0); on bad input or params (:data:`BAD_INPUT` plus
    ``extra``) print :func:`error_line` to stderr and return :data:`EXIT_BAD_INPUT`."""
    try:
        rc = body()
    except BAD_INPUT + extra as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0 if rc is None else int(rc)


def stage_main(*extra: type[BaseException]) -> Callable[[Main], Main]:
    """Decorator for a stage's ``main(argv)``: runs it through :func:`run_main` (``extra``: more exception types
    that mean bad input for this stage)."""

    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def guarded(*args, **kwargs) -> int:
            return run_main(lambda: main(*args, **kwargs), *extra)

        return guarded  # type: ignore[return-value]

    return wrap
