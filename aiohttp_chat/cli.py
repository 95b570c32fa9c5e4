"""What the command-line entry points share: the name they were run by, for their usage lines."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path


def command_name(module: str) -> str:
    """How the user ran `module`'s `main`: `python -m MODULE`, or a console script's name."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.removesuffix(".__main__") == module:
        return f"python -m {module}"
    script = Path(sys.argv[0]).name
    scripts = entry_points(group="console_scripts", name=script)
    if any(entry.module == module for entry in scripts):
        return script
    return f"python -m {module}"  # called from Python (a test, another program)
