"""Type-check the package with mypy against a baseline that may only shrink.

    python .ci/typecheck.py            # fails on any error not in the baseline, or on a fixed one
    python .ci/typecheck.py --update   # rewrite the baseline from today's errors (after fixing)

The baseline (``.ci/mypy-baseline.txt``) lists today's errors without line numbers (so edits
elsewhere in a file do not disturb it), one per line, repeated when an error occurs twice.
A new error fails the check; so does a fixed one, until the baseline is rewritten smaller.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
ERROR = re.compile(r"^(?P<path>[^:]+):\d+(?::\d+)?: error: (?P<message>.*)$")


def current_errors() -> Counter[str]:
    """mypy's errors on ``didlearn/`` (settings in pyproject.toml), keyed without line numbers."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "didlearn", "--no-error-summary"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if result.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.exit(result.stdout + result.stderr)
    found = (ERROR.match(line) for line in result.stdout.splitlines())
    return Counter(f"{m['path']}: {m['message']}" for m in found if m)


def main(argv: list[str]) -> int:
    errors = current_errors()
    if "--update" in argv:
        BASELINE.write_text("".join(f"{e}\n" for e in sorted(errors.elements())))
        print(f"baseline: {sum(errors.values())} errors")
        return 0
    known = Counter(BASELINE.read_text().splitlines()) if BASELINE.exists() else Counter()
    new, fixed = errors - known, known - errors
    for e in sorted(new.elements()):
        print(f"new type error: {e}")
    if new:
        print(f"{sum(new.values())} new type error(s): fix them (the baseline only shrinks).")
        return 1
    if fixed:
        print(
            f"{sum(fixed.values())} baseline error(s) are fixed: shrink the baseline with "
            "`make typecheck-baseline` and commit it."
        )
        return 1
    print(f"type check: {sum(errors.values())} known errors, none new")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
