"""docs/walkthrough.md stays true: its snippets are the code, and its commands run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support.needs import require_program
from .support.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "walkthrough.md"
MODULE = re.compile(r"`(aiohttp_chat/[\w/]+\.py)`")
TWO_TERMINALS = "two-terminals"  # the fence's marker for a command that is not run here
GUIDE_PORT = "127.0.0.1:8080"


@dataclass
class Block:
    language: str  # the fence's info string, marker included
    lines: list[str]
    before: str  # the guide's text before it (code blocks left out)
    line_number: int


def blocks(text: str) -> list[Block]:
    found, prose, inside = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        if inside is None and line.startswith("```"):
            inside = Block(line[3:].strip(), [], "\n".join(prose), number)
        elif inside is not None and line.startswith("```"):
            found.append(inside)
            inside = None
        elif inside is not None:
            inside.lines.append(line)
        else:
            prose.append(line)
    assert inside is None, "a code block is never closed"
    return found


BLOCKS = blocks(GUIDE.read_text())
SNIPPETS = [block for block in BLOCKS if block.language == "python"]
COMMANDS = [
    line
    for block in BLOCKS
    if block.language == "bash"
    for line in block.lines
    if line.strip() and not line.lstrip().startswith("#")
]


def _stripped(lines: list[str]) -> str:
    return "\n".join(line.strip() for line in lines)


def test_the_guide_is_linked_from_the_top_of_the_readme() -> None:
    top = (ROOT / "README.md").read_text()[:3000]
    assert "(docs/walkthrough.md)" in top


def test_every_block_is_python_a_command_to_run_or_marked_for_another_terminal() -> None:
    assert len(SNIPPETS) >= 10 and len(COMMANDS) >= 4
    for block in BLOCKS:
        assert block.language in ("python", "bash", f"bash {TWO_TERMINALS}"), block.line_number


@pytest.mark.parametrize("block", SNIPPETS, ids=lambda block: f"line {block.line_number}")
def test_each_snippet_is_the_code_of_the_module_it_names(block: Block) -> None:
    """Verbatim, line for line, indentation aside: a refactor that changes quoted code fails
    here until the guide follows."""
    named = MODULE.findall(block.before)
    assert named, f"line {block.line_number}: the text before the snippet names no module"
    module = ROOT / named[-1]  # the one named nearest before the snippet
    code = f"\n{_stripped(module.read_text().splitlines())}\n"  # whole lines only
    snippet = f"\n{_stripped(block.lines)}\n"
    assert snippet in code, f"line {block.line_number}: not in {named[-1]}"


def test_every_module_the_guide_names_exists() -> None:
    for path in set(MODULE.findall(GUIDE.read_text())):
        assert (ROOT / path).is_file(), path


@pytest.fixture(scope="module")
def guide_server() -> Iterator[ServerProcess]:
    server = ServerProcess()
    try:
        yield server
    finally:
        server.stop()
        server.log.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_runs(command: str, guide_server: ServerProcess) -> None:
    """As written, against a server of the default settings on a free port (for 8080)."""
    if "--redis" in command:
        require_program("redis-server")
    command = command.replace(GUIDE_PORT, f"127.0.0.1:{guide_server.port}")
    bin_dir = str(Path(sys.executable).parent)  # `python` is this test's interpreter
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    done = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()
