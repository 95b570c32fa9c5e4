"""TLS: the server on https/wss with a certificate the test makes (trustme), and the clients."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import trustme

from .support.processes import run_process
from .support.servers import ServerProcess


@dataclass
class Tls:
    ca: Path  # the certificate of the CA the test made
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = Tls(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    issued.private_key_pem.write_to_path(str(files.key))
    for index, pem in enumerate(issued.cert_chain_pems):
        pem.write_to_path(str(files.cert), append=index > 0)
    return files


@pytest.fixture
def wss_server(server_process: Callable[..., ServerProcess], tls: Tls) -> str:
    server = server_process("--tls-cert", str(tls.cert), "--tls-key", str(tls.key))
    return f"wss://127.0.0.1:{server.port}"


async def test_the_client_over_wss_with_its_ca_file(wss_server: str, tls: Tls) -> None:
    url = f"{wss_server}/chat"
    code, out, err = await run_process(
        "aiohttp_chat.client", "--url", url, "--ca-file", str(tls.ca), "--nick", "Secret",
        input="over tls\n",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert ">>>Secret: over tls" in out


async def test_an_untrusted_certificate_is_refused_in_one_line(wss_server: str) -> None:
    url = f"{wss_server}/chat"
    code, _, err = await run_process("aiohttp_chat.client", "--url", url, "--reconnect")
    assert code == 1
    assert err.startswith(f"aiohttp-chat: cannot reach {url}: its certificate is not trusted (")
    assert err.count("\n") == 1


async def test_insecure_works_and_says_so(wss_server: str) -> None:
    url = f"{wss_server}/chat"
    code, out, err = await run_process(
        "aiohttp_chat.client", "--url", url, "--insecure", input="unchecked\n"
    )
    assert code == 0
    assert err == (
        "aiohttp-chat: --insecure: the server's certificate is not checked; "
        "anyone on the way could read or change the chat.\n"
    )
    assert "unchecked" in out


async def test_polite_leaves_over_tls_are_logged_as_the_metrics_count_them(
    server_process: Callable[..., ServerProcess], tls: Tls
) -> None:
    server = server_process("--tls-cert", str(tls.cert), "--tls-key", str(tls.key))
    url = f"wss://127.0.0.1:{server.port}/chat"
    client = ("aiohttp_chat.client", "--url", url, "--ca-file", str(tls.ca))
    for _ in range(3):  # clients that leave and exit at once, as the terminal client does
        await asyncio.gather(*(run_process(*client, input="bye\n") for _ in range(5)))
    _, _, err = server.stop()
    leaves = [line for line in err.splitlines() if " left, code " in line]
    assert len(leaves) == 15 and all(line.endswith(" left, code 1000") for line in leaves), leaves


async def test_the_echo_example_over_wss(wss_server: str, tls: Tls) -> None:
    url = f"{wss_server}/echo"
    code, out, err = await run_process(
        "aiohttp_chat.client_echo_example", "--url", url, "--ca-file", str(tls.ca),
        "--interval", "0.1", "--count", "1",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "Received: {'echo': {'message': 'Hello world!'}}" in out
    code, _, err = await run_process("aiohttp_chat.client_echo_example", "--url", url)
    assert code == 1 and err.startswith(f"cannot reach {url}: its certificate is not trusted (")
    assert "SSLCertVerificationError" not in err and err.count("\n") == 1  # plain words


async def test_the_server_serves_https_to_plain_http_requests_too(
    wss_server: str, tls: Tls
) -> None:

    context = ssl.create_default_context(cafile=str(tls.ca))
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{wss_server.replace('wss', 'https')}/chat", ssl=context)
        assert response.status == 426  # TLS first, then the same answers as without it


async def test_a_plain_client_against_the_tls_server_fails_cleanly(wss_server: str) -> None:
    url = wss_server.replace("wss://", "ws://") + "/chat"
    code, _, err = await run_process("aiohttp_chat.client", "--url", url, input="")
    assert (code, err) == (
        1,
        f"aiohttp-chat: cannot reach {url}: the server closed the connection "
        "(if it serves TLS, the URL starts with wss://)\n",
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/nowhere.pem", "--tls-key", "/nowhere.pem"], "Cannot load the TLS"),
    ],
)
def test_tls_options_are_checked(args: list[str], said: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiohttp_chat.server", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode in (1, 2) and said in result.stderr
    assert "Traceback" not in result.stderr
