"""What a test needs installed: skipped without it here, a failure in CI (`CI` set), where
`.ci/run` installs every such program."""

from __future__ import annotations

import os
import shutil

import pytest


def require(program: str, *, in_ci: str, hint: str = "") -> None:
    """Skip the test without `program` (a name on PATH or a path), except in CI, where its
    absence is a failure saying `in_ci`; `hint` says how to install it."""
    if shutil.which(program) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is required in CI ({in_ci})")
        pytest.skip(f"{program} is not installed{f' ({hint})' if hint else ''}")


def require_program(name: str) -> None:
    """Skip the test without `name`, except in CI, where its absence is a failure."""
    require(name, in_ci=".ci/run installs it")
