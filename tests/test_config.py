"""The rules of `config.py` and `options.py`: one declaration per option, and what is
derived from it."""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from dataclasses import fields
from pathlib import Path

import pytest

from aiohttp_chat import options
from aiohttp_chat.config import (
    OPTIONS,
    ProcessSettings,
    Settings,
    build_parser,
    option_table,
    parse_args,
    process_from,
    settings_from,
)
from aiohttp_chat.options import ENV_PREFIX

README = Path(__file__).parent.parent / "README.md"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AIOHTTP_CHAT_* variable of the shell running the tests."""
    for variable in os.environ:
        if variable.startswith(ENV_PREFIX):
            monkeypatch.delenv(variable)


def parse(*argv: str) -> argparse.Namespace:
    return parse_args(build_parser(), list(argv))


def refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The usage error `argv` is, as its last line says it."""
    with pytest.raises(SystemExit) as raised:
        parse(*argv)
    assert raised.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


def test_the_readme_table_is_the_declarations_table() -> None:
    text = README.read_text()
    start = text.index("| option | environment variable | default | meaning |\n")
    end = text.index("\n\n", start) + 1
    assert text[start:end] == option_table(), "README: paste config.option_table()"


def test_every_field_is_an_option_with_help_and_its_environment_twin() -> None:
    declared = [*fields(Settings), *fields(ProcessSettings)]
    assert [each.name for each in OPTIONS] == [each.name for each in declared]
    hidden = {each.name for each in OPTIONS if each.env is None}
    assert hidden == {"reuse_port"}  # set by `--workers N`'s supervisor, not by people
    for each in OPTIONS:
        if each.env is not None:
            assert each.option.help, each.name
            assert each.env == ENV_PREFIX + each.flag.removeprefix("--").replace("-", "_").upper()
    assert len({each.flag for each in OPTIONS}) == len(OPTIONS)


def test_a_flag_is_its_field_name_and_a_list_flag_its_singular() -> None:
    flags = {each.name: each.flag for each in OPTIONS}
    assert flags["max_connections_per_ip"] == "--max-connections-per-ip"
    assert flags["trusted_proxies"] == "--trusted-proxy"
    assert flags["allowed_origins"] == "--allowed-origin"
    assert flags["server_names"] == "--server-name"
    assert flags["metrics_from"] == "--metrics-from"  # not a plural: as it is


def test_help_shows_every_option_its_default_and_its_twin() -> None:
    text = re.sub(r"\s+", " ", build_parser().format_help())
    for each in OPTIONS:
        assert (each.flag in text) is (each.env is not None), each.flag
        if each.env is not None:
            assert each.env in text
    assert "(default: 60) [AIOHTTP_CHAT_HEARTBEAT]" in text  # 60, not 60.0
    assert "(default: off) [AIOHTTP_CHAT_COMPRESS=1]" in text
    assert "(default: 127.0.0.0/8, ::1/128) [AIOHTTP_CHAT_METRICS_FROM]" in text
    assert "about 10% more" in text and "None" not in text
    assert f"the client; {options.REPEATABLE} (default: none) [AIOHTTP_CHAT_TRUSTED_PROXY]" in text


def test_nothing_given_is_every_default() -> None:
    args = parse()
    assert settings_from(args) == Settings() and process_from(args) == ProcessSettings()


def test_the_environment_beats_the_default_and_the_command_line_beats_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIOHTTP_CHAT_MAX_MESSAGE_CHARS", "5")
    monkeypatch.setenv("AIOHTTP_CHAT_PORT", "9000")
    monkeypatch.setenv("AIOHTTP_CHAT_HEARTBEAT", "0")  # 0 turns it off: None, as the flag's
    args = parse("--port", "9001")
    assert settings_from(args).max_message_chars == 5
    assert settings_from(args).heartbeat is None
    assert process_from(args).port == 9001


def test_the_command_line_wins_over_a_bad_environment_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIOHTTP_CHAT_PORT", "abc")
    assert process_from(parse("--port", "1")).port == 1


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("AIOHTTP_CHAT_PORT", "abc", "invalid port value"),
        ("AIOHTTP_CHAT_PORT", "70000", "must be a port from 0 to 65535"),
        ("AIOHTTP_CHAT_MAX_FRAME_BYTES", "0", "must be greater than 0, got 0"),
        ("AIOHTTP_CHAT_HISTORY_TTL", "soon", "invalid float value"),
        ("AIOHTTP_CHAT_LOG_FORMAT", "xml", "invalid choice (choose from text, json)"),
        ("AIOHTTP_CHAT_REDIS_CLUSTER", "maybe", "must be 1 or 0"),
        ("AIOHTTP_CHAT_TRUSTED_PROXY", "10.0.0.0/8,nope", "'nope' does not appear to be"),
        ("AIOHTTP_CHAT_ALLOWED_ORIGIN", "example.com", "an origin is scheme://host[:port]"),
        ("AIOHTTP_CHAT_REDIS_URL", "", "must be a redis://HOST[:PORT][/DB]"),
    ],
)
def test_a_bad_environment_value_is_a_usage_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    reason: str,
) -> None:
    monkeypatch.setenv(variable, value)
    last = refusal(capsys)
    assert last.startswith(f"python -m aiohttp_chat.server: error: environment variable {variable}")
    assert f"{variable}={value!r}: {reason}" in last


def test_the_environment_is_read_by_the_flags_own_parser(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every option refuses the same text from its flag and from its variable."""
    for each in OPTIONS:
        if each.env is None or each.option.kind == "switch" or each.option.parse is str:
            continue  # (a host or a file name: any text is one)
        text = "a/b" if each.name == "server_names" else "x"
        assert f"error: argument {each.flag}: " in refusal(capsys, each.flag, text)
        monkeypatch.setenv(each.env, text)
        assert f"error: environment variable {each.env}='{text}': " in refusal(capsys)
        monkeypatch.delenv(each.env)


def test_choices_ignore_case_from_either_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOHTTP_CHAT_LOG_LEVEL", "debug")
    monkeypatch.setenv("AIOHTTP_CHAT_LOOP", "AsyncIO")
    run = process_from(parse("--log-format", "JSON"))
    assert (run.log_level, run.loop, run.log_format) == ("DEBUG", "asyncio", "json")


def test_a_list_is_repeated_flags_or_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = ipaddress.ip_network
    args = parse("--trusted-proxy", "10.0.0.1", "--trusted-proxy", "192.168.0.0/16")
    assert settings_from(args).trusted_proxies == (net("10.0.0.1/32"), net("192.168.0.0/16"))
    monkeypatch.setenv("AIOHTTP_CHAT_SERVER_NAME", "Chat.Example.com., ,other.example")
    monkeypatch.setenv("AIOHTTP_CHAT_METRICS_FROM", "10.0.0.0/8")
    args = parse("--metrics-from", "::1")
    assert settings_from(args).server_names == ("chat.example.com", "other.example")
    assert settings_from(args).metrics_from == (net("::1"),)  # replaced, not added to


def test_a_switch_is_a_flag_or_1_and_0(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(parse("--compress")).compress is True
    monkeypatch.setenv("AIOHTTP_CHAT_COMPRESS", "yes")
    assert settings_from(parse()).compress is True
    assert settings_from(parse("--no-compress")).compress is False
    monkeypatch.setenv("AIOHTTP_CHAT_COMPRESS", "0")
    assert settings_from(parse()).compress is False


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--workers", "2"], "--workers above 1 needs --redis-url"),
        (["--workers", "2", "--redis-url", "redis://h/0", "--port", "0"], "a fixed --port"),
    ],
)
def test_options_that_cannot_work_together_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    assert reason in refusal(capsys, *argv)


def test_workers_with_redis_and_a_port_are_fine() -> None:
    args = parse("--workers", "2", "--redis-url", "redis://h/0")
    assert process_from(args).workers == 2 and settings_from(args).redis_url == "redis://h/0"


def test_the_hidden_reuse_port_is_for_the_supervisor_only() -> None:
    assert "--reuse-port" not in build_parser().format_help()
    assert process_from(parse("--reuse-port")).reuse_port is True
