"""How every benchmark writes its ``--json`` results: whole, or not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON to ``path`` (making its folder), then say where.

    The text goes to ``PATH.part`` first and is renamed into place: an interrupted run leaves the
    previous results, never half a file. Unlike the course's outputs, a results file is meant to
    be replaced by the next run, so an existing one is overwritten.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(results, indent=2) + "\n")
    part.replace(path)
    print(f"written {path}")
