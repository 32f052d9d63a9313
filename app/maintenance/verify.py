"""``streamport verify``: the command's entry point and what it prints.

The pure decisions live in ``findings``, the reading of rows and bytes in ``readers``, the
pass over the library in ``library_check``; this module runs that pass and reports it on the
console or as one JSON document. Stored bytes and the catalog are only ever read: what is
found is reported, never repaired or removed.
"""

import asyncio
import json
import sys
import time
from dataclasses import replace
from typing import TextIO

from app.config import Settings
from app.maintenance.findings import Kind, Problem, Tally, duration_text
from app.maintenance.library_check import (
    MAX_JOBS,
    VerifyOptions,
    sweep_age_seconds,
    verify_library,
)
from app.maintenance.readers import VerifyAborted

# ``streamport verify`` (app/cli.py) takes its options and their bounds from here.
__all__ = ["MAX_JOBS", "Console", "VerifyOptions", "run_verify"]


class Console:
    """Problem lines and the summary on standard output (or one JSON document at the end),
    progress on standard error: rewritten in place on a terminal, a line now and then
    otherwise."""

    def __init__(
        self, as_json: bool, quiet: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr
    ) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = out
        self.err = err
        self.problems: list[Problem] = []
        self._live = err.isatty()
        self._shown = False
        self._last = 0.0

    def problem(self, problem: Problem) -> None:
        self.problems.append(problem)
        if not self.as_json:
            self._clear()
            print(problem.line(), file=self.out, flush=True)

    def progress(self, tally: Tally, totals: tuple[int, int]) -> None:
        now = time.monotonic()
        if self.quiet or (not self._live and now - self._last < 30):
            return
        self._last = now
        media, size = totals
        share = f" ({min(100, 100 * tally.original_bytes // size)} %)" if size else ""
        text = (
            f"verify: {tally.media} of {media} media, {tally.original_bytes / 1e9:.2f} of "
            f"{size / 1e9:.2f} GB of originals{share}, "
            f"{sum(tally.problems.values())} problem(s) so far"
        )
        if self._live:
            self.err.write(f"\r{text}\x1b[K")
            self._shown = True
        else:
            self.err.write(f"{text}\n")
        self.err.flush()

    def _clear(self) -> None:
        if self._shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self._shown = False

    def finish(self, tally: Tally, orphan_age_seconds: float, sweep_age_seconds: float) -> None:
        self._clear()
        if self.as_json:
            document = {
                **tally.as_dict(),
                "orphan_age_seconds": orphan_age_seconds,
                "problems": [problem.as_dict() for problem in self.problems],
            }
            print(json.dumps(document, indent=2), file=self.out, flush=True)
            return
        print(tally.summary(orphan_age_seconds), file=self.out, flush=True)
        if tally.problems[Kind.ORPHAN]:
            print(
                "Orphans are only reported here; `streamport serve` removes those older than "
                f"{duration_text(sweep_age_seconds)} when it starts.",
                file=self.out,
                flush=True,
            )

    def abort(self, reason: str) -> None:
        self._clear()
        print(f"streamport verify: {reason}", file=self.err, flush=True)
        if self.as_json:
            document = {
                "ok": False,
                "error": reason,
                "problems": [problem.as_dict() for problem in self.problems],
            }
            print(json.dumps(document, indent=2), file=self.out, flush=True)


def run_verify(settings: Settings, options: VerifyOptions, as_json: bool, quiet: bool) -> int:
    """Run a verification and print it; 0 when all is well, 1 when something is wrong, 2
    when it could not be done."""
    console = Console(as_json, quiet)
    sweep_age = sweep_age_seconds(settings)
    if options.orphan_age_seconds is None:
        options = replace(options, orphan_age_seconds=sweep_age)
    try:
        tally = asyncio.run(verify_library(settings, options, console.problem, console.progress))
    except VerifyAborted as exc:
        console.abort(str(exc))
        return 2
    except KeyboardInterrupt:
        console.abort("interrupted")
        return 130
    assert options.orphan_age_seconds is not None
    console.finish(tally, options.orphan_age_seconds, sweep_age)
    return 0 if tally.ok else 1
