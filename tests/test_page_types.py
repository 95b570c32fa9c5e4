"""The page's JavaScript type-checks: TypeScript's compiler reads its JSDoc (`// @ts-check`)
and finds no error, so a message field misspelt or a null left unchecked fails here, not in
a browser. tsc comes from npm: `.ci/run` installs it in `.ci/node/`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from aiohttp_chat.page import STATIC

from .support.needs import require_program

ROOT = Path(__file__).resolve().parent.parent
LOCAL_TSC = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "tsc"
# Strict, for ES modules in a browser; nothing emitted.
FLAGS = ["--noEmit", "--allowJs", "--checkJs", "--strict"]
FLAGS += ["--target", "es2022", "--module", "es2022", "--lib", "es2022,dom"]


def test_the_pages_modules_type_check() -> None:
    tsc = str(LOCAL_TSC) if LOCAL_TSC.is_file() else shutil.which("tsc")
    if tsc is None:
        require_program("tsc")  # skipped here, a failure in CI
        return
    modules = sorted(STATIC.glob("*.js"))
    assert {path.name for path in modules} >= {"app.js", "chat.js", "texts.js"}
    for module in modules:  # so that an editor checks each as tsc does here
        assert module.read_text().startswith("// @ts-check\n"), module.name
    done = subprocess.run(
        [tsc, *FLAGS, *map(str, modules)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
