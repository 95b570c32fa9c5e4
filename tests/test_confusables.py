"""The generator of `confusables.py`, on a small file in the consortium's format."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from aiohttp_chat import confusables, confusables_generate
from aiohttp_chat.confusables_generate import BadSource

VERSION = unicodedata.unidata_version
SAMPLE = f"""\ufeff# confusables.txt
# Date: 2021-05-29, 22:09:29 GMT
#
# Unicode Security Mechanisms for UTS #39
# Version: {VERSION}
#
05AD ;\t0596 ;\tMA\t# ( \u05ad \u2192 \u0596 ) HEBREW ACCENT DEHI \u2192 HEBREW ACCENT TIPEHA\t#

0410 ;\t0041 ;\tMA\t# ( \u0410 \u2192 A ) CYRILLIC CAPITAL LETTER A \u2192 LATIN CAPITAL LETTER A\t#

006D ;\t0072 006E ;\tMA\t# ( m \u2192 rn ) LATIN SMALL LETTER M \u2192 LATIN SMALL LETTER R, N\t#

0022 ;\t0027 0027 ;\tMA\t#* ( " \u2192 '' ) QUOTATION MARK \u2192 APOSTROPHE, APOSTROPHE\t#

1D400 ;\t0041 ;\tMA\t# ( \U0001d400 \u2192 A ) MATHEMATICAL BOLD CAPITAL A \u2192 LATIN CAPITAL A\t#
"""


def test_parse_reads_single_and_multiple_code_point_prototypes() -> None:
    version, mappings = confusables_generate.parse(SAMPLE)
    assert version == VERSION
    assert mappings == {0x05AD: "\u0596", 0x0410: "A", 0x6D: "rn", 0x22: "''", 0x1D400: "A"}


def test_the_module_written_is_python_that_holds_the_table(tmp_path: Path) -> None:
    data = SAMPLE.encode()
    source = confusables_generate.generate(data)
    namespace: dict[str, object] = {}
    exec(compile(source, "confusables.py", "exec"), namespace)
    assert namespace["VERSION"] == VERSION
    assert namespace["SOURCE_SHA256"] == hashlib.sha256(data).hexdigest()
    table = namespace["PROTOTYPES"]
    assert isinstance(table, dict)
    assert "\u0410lice \U0001d400 mm".translate(table) == "Alice A rnrn"
    assert source.isascii()  # escapes, not look-alike characters in the source


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (SAMPLE.replace(f"# Version: {VERSION}", "# Version: 13.0.0"), "of Unicode 13.0.0"),
        (SAMPLE.replace(f"# Version: {VERSION}", ""), "not a confusables.txt"),
        (SAMPLE + "0410 ;\t0042 ;\tMA\t# again\n", "mapped twice"),
        (SAMPLE + "0410 0411 ;\t0042 ;\tMA\n", "line 16"),
        (SAMPLE + "zz ;\t0042 ;\tMA\n", "line 16"),
        (SAMPLE + "0412 ;\tMA\n", "line 16"),
        ("# Version: " + VERSION + "\n# nothing else\n", "no mappings"),
    ],
)
def test_a_file_that_is_not_the_right_data_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(BadSource, match=complaint):
        confusables_generate.generate(text.encode())


def test_the_command_writes_the_module_or_says_why_not(tmp_path: Path) -> None:
    source, output = tmp_path / "confusables.txt", tmp_path / "out.py"
    source.write_text(SAMPLE, encoding="utf-8")
    command = [sys.executable, "-m", "aiohttp_chat.confusables_generate"]
    done = subprocess.run([*command, str(source), "--output", str(output)], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert output.read_text() == confusables_generate.generate(SAMPLE.encode())
    source.write_text(SAMPLE.replace(VERSION, "99.0.0"), encoding="utf-8")
    done = subprocess.run(
        [*command, str(source), "--output", str(tmp_path / "never.py")], capture_output=True
    )
    assert done.returncode == 1
    assert b"of Unicode 99.0.0" in done.stderr
    assert not (tmp_path / "never.py").exists()


def test_the_committed_module_is_the_generators_own_output() -> None:
    """Not edited by hand: rendering its own table again gives it back byte for byte."""
    committed = Path(confusables.__file__).read_text(encoding="utf-8")
    rendered = confusables_generate.render(
        confusables.VERSION, confusables.SOURCE_SHA256, dict(confusables.PROTOTYPES)
    )
    assert committed == rendered
    assert confusables.VERSION == VERSION
