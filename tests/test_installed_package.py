"""What a user installs: the wheel, in a fresh virtual environment, run from outside the checkout.

An editable install (what the other tests run on) reads the checkout, so it hides every file
the wheel leaves out. These tests build the wheel, compare its files with the package tree,
install it with its dependencies into a new virtual environment, and run each entry point
from there, then a real server and a real client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from aiohttp_chat.page import STATIC

from .support.network import free_port, wait_for_port

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGE = "aiohttp_chat"

pytestmark = pytest.mark.timeout(300)  # a cold pip cache downloads the dependencies


@dataclass
class Installed:
    wheel: Path
    bin: Path  # the virtual environment's scripts
    home: Path  # a directory outside the checkout to run from

    def run(self, *command: str, input: str = "", timeout: float = 60) -> tuple[int, str, str]:
        """Run `command` (a script of the environment's bin/) from `home`."""
        result = subprocess.run(
            [str(self.bin / command[0]), *command[1:]],
            cwd=self.home,
            env=_clean_env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return result.returncode, result.stdout, result.stderr

    def serve(self, port: int) -> subprocess.Popen[bytes]:
        """The installed server, listening on `port` once this returns."""
        command = [self.bin / "aiohttp-chat-server", "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(
            command,
            cwd=self.home,
            env=_clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port, server)
        return server


def _clean_env() -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _package_files() -> set[str]:
    """Every file of the package tree that is meant to ship (what git tracks or would)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", PACKAGE],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
    )
    if listed.returncode == 0 and listed.stdout:
        names = set(listed.stdout.splitlines())
        return {name for name in names if (CHECKOUT / name).is_file()}  # not deleted ones
    tree = CHECKOUT / PACKAGE  # not a git checkout (an unpacked sdist): walk it
    return {
        path.relative_to(CHECKOUT).as_posix()
        for path in tree.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", root, CHECKOUT], check=True, timeout=300)
    (wheel,) = root.glob("aiohttp_chat-*.whl")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    command = [bin_dir / "python", "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    subprocess.run([*command, wheel], check=True, cwd=root, env=_clean_env(), timeout=300)
    home = root / "home"
    home.mkdir()
    yield Installed(wheel, bin_dir, home)


def test_the_wheel_holds_every_file_of_the_package(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {name for name in wheel.namelist() if name.startswith(f"{PACKAGE}/")}
    expected = _package_files()
    assert f"{PACKAGE}/bench/__main__.py" in expected and f"{PACKAGE}/py.typed" in expected
    assert shipped == expected, (
        f"left out of the wheel: {sorted(expected - shipped)}; "
        f"in the wheel but not in the tree: {sorted(shipped - expected)}"
    )


def test_the_package_is_imported_from_the_environment(installed: Installed) -> None:
    code, out, err = installed.run("python", "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)")
    assert code == 0, err
    assert Path(out.strip()).is_relative_to(installed.bin.parent)


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (("python", "-m", "aiohttp_chat.server"), "python -m aiohttp_chat.server"),
        (("python", "-m", "aiohttp_chat.client"), "python -m aiohttp_chat.client"),
        (
            ("python", "-m", "aiohttp_chat.client_echo_example"),
            "python -m aiohttp_chat.client_echo_example",
        ),
        (("python", "-m", "aiohttp_chat.bench"), "python -m aiohttp_chat.bench"),
        (("aiohttp-chat-server",), "aiohttp-chat-server"),
        (("aiohttp-chat",), "aiohttp-chat"),
    ],
    ids=["server", "client", "echo-example", "bench", "server-script", "client-script"],
)
def test_every_entry_point_answers_help(
    installed: Installed, command: tuple[str, ...], usage: str
) -> None:
    code, out, err = installed.run(*command, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: {usage} ")


async def test_an_installed_server_and_clients_chat(installed: Installed) -> None:
    port = free_port()
    server = installed.serve(port)
    try:
        url = f"ws://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/chat") as peer:
            await peer.receive_json(timeout=5)
            code, out, err = installed.run(
                "aiohttp-chat", "--url", f"{url}/chat", "--nick", "Installed", input="hello\n"
            )
            assert (code, err) == (0, "")
            assert ">>>Installed: hello" in out
            received = [await peer.receive_json(timeout=5) for _ in range(2)]
        assert received[0] == {"action": "joined", "room": "Default", "user": "Installed"}
        assert received[1]["message"] == "hello" and received[1]["user"] == "Installed"

        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            for path in ["/", *(f"/static/{asset.name}" for asset in STATIC.iterdir())]:
                async with session.get(path) as response:  # the page, from the installed files
                    assert response.status == 200, path

        code, out, err = installed.run(
            "python",
            "-m",
            "aiohttp_chat.client_echo_example",
            "--url",
            f"{url}/echo",
            "--interval",
            "0.1",
            "--count",
            "1",
        )
        assert (code, err) == (0, "")
        reply = out.splitlines()[-1].removeprefix("Received: ")
        assert json.loads(reply.replace("'", '"')) == {"echo": {"message": "Hello world!"}}
    finally:
        server.terminate()
        assert server.wait(timeout=15) == 0
