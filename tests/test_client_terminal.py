"""The line editor: keys in, lines and the input row out."""

import pytest

from aiohttp_chat.client_terminal import Key, LineEditor

LEFT, RIGHT, UP, DOWN, HOME, END, DELETE = (
    "\x1b[D",
    "\x1b[C",
    "\x1b[A",
    "\x1b[B",
    "\x1b[H",
    "\x1b[F",
    "\x1b[3~",
)


def test_typing_and_enter_submit_the_line() -> None:
    editor = LineEditor()
    assert editor.feed("hello") == []
    assert editor.row(80) == ("> hello", 7)
    assert editor.feed("\r") == ["hello"]
    assert (editor.text, editor.row(80)) == ("", ("> ", 2))
    assert editor.feed("one\ntwo\n") == ["one", "two"]  # a pasted block: one line each


@pytest.mark.parametrize(
    ("keys", "text", "cursor"),
    [
        ("abc\x7f", "ab", 2),
        ("abc" + LEFT + LEFT + "X", "aXbc", 2),
        ("abc" + HOME + "X" + END + "Y", "XabcY", 5),
        ("abc\x01\x06Z", "aZbc", 2),  # Ctrl-A, Ctrl-F
        ("abc" + HOME + DELETE, "bc", 0),
        ("abc" + LEFT + "\x04", "ab", 2),  # Ctrl-D in a line deletes
        ("one two  three\x17", "one two  ", 9),  # Ctrl-W
        ("one two" + LEFT * 3 + "\x15", "two", 0),  # Ctrl-U
        ("one two" + LEFT * 3 + "\x0b", "one ", 4),  # Ctrl-K
        ("a\tb", "ab", 2),  # Tab completes nicks: with none to complete, it types nothing
        ("a\x07\x00b", "ab", 2),  # other control characters never get in
        ("a\x1bxb", "axb", 3),  # a lone ESC (Alt-x) is dropped
        ("é漢😀", "é漢😀", 3),
    ],
)
def test_editing_keys(keys: str, text: str, cursor: int) -> None:
    editor = LineEditor()
    assert editor.feed(keys) == []
    assert (editor.text, editor.cursor) == (text, cursor)


def test_an_escape_sequence_cut_between_reads_is_completed() -> None:
    editor = LineEditor()
    editor.feed("ab\x1b")
    editor.feed("[")
    editor.feed("D")
    editor.feed("X")
    assert editor.text == "aXb"
    editor.feed("\x1bO")  # the application-mode arrow, cut after its O
    editor.feed("D")
    editor.feed("Y")
    assert editor.text == "aYXb"


def test_ctrl_d_on_an_empty_line_is_the_end_and_ctrl_l_clears() -> None:
    editor = LineEditor()
    assert editor.feed("\x0c") == [Key.CLEAR]
    assert editor.feed("half\x0c") == [Key.CLEAR]
    assert editor.text == "half"  # Ctrl-L keeps what is being typed
    assert editor.feed("\x15\x04") == [Key.EOF]


def test_history_with_the_arrows() -> None:
    editor = LineEditor()
    editor.feed("first\rsecond\rdraft")
    editor.feed(UP)
    assert editor.text == "second"
    editor.feed(UP + UP + UP)
    assert editor.text == "first"
    editor.feed(DOWN + DOWN)
    assert editor.text == "draft"  # back to what was being typed
    assert editor.feed(UP + "!\r") == ["second!"]


def test_a_long_line_scrolls_sideways_in_one_row() -> None:
    editor = LineEditor()
    editor.feed("0123456789abcdefghij")
    row, column = editor.row(12)  # room for 12 - 1 - len("> ") = 9 characters
    assert (row, column) == ("> …cdefghij", 11)  # … where text is hidden
    editor.feed(HOME)
    assert editor.row(12) == ("> 01234567…", 2)
    editor.feed("漢" * 3)  # wide characters take two columns each
    assert editor.row(12) == ("> 漢漢漢01…", 8)
    editor.feed(END)
    assert editor.row(12) == ("> …cdefghij", 11)


def test_a_bracketed_paste_is_one_line_with_its_line_breaks() -> None:
    editor = LineEditor()
    pasted = "\x1b[200~first line\rsecond\r\nthird\x1b[201~"
    assert editor.feed(pasted[:9]) == []  # cut anywhere by the reads
    assert editor.feed(pasted[9:]) == []  # a pasted CR is no Enter
    assert editor.text == "first line\nsecond\nthird"
    assert editor.row(80) == ("> first line↵second↵third", 25)
    assert editor.feed("\r") == ["first line\nsecond\nthird"]  # the Enter after it sends it
    assert editor.feed("\x1b[200~\x1b[D\x1b[201~x\x1b[D") == []  # keys inside a paste: text
    assert (editor.text, editor.cursor) == ("x", 0)


NICKS = ["Alice", "alan", "Bob"]  # most recently active first


def _editor(nicks: list[str] = NICKS) -> LineEditor:
    return LineEditor(nicks=lambda: nicks)


@pytest.mark.parametrize(
    ("keys", "text", "cursor"),
    [
        ("Al\t", "Alice: ", 7),  # at the start of the line: addressed
        ("al\t", "Alice: ", 7),  # casefolded
        ("Al\t\t", "alan: ", 6),  # again: the next match
        ("Al\t\t\t", "Alice: ", 7),  # round and round
        ("hi b\t", "hi Bob ", 7),  # elsewhere: a space
        ("hi @a\t", "hi @Alice ", 10),  # an @ stays
        ("@a\t", "@Alice ", 7),
        ("\t", "", 0),  # nothing typed: nothing to complete (the page's Tab moves the focus)
        ("@\t", "@", 1),
        ("\x1b[200~hi\n\x1b[201~Al\t", "hi\nAlice: ", 10),  # a line of a pasted text
        ("x\t", "x", 1),  # no match: nothing happens, no stray space
        ("Al\tthanks", "Alice: thanks", 13),  # another key ends it, and is typed
        ("Al\tX\t", "Alice: X", 8),  # Tab again: a new completion, of the word X
        ("Al\t" + LEFT + "\t", "Alice: ", 6),  # moved: ended, and "Alice:" matches none
        ("hi al there" + LEFT * 6 + "\t", "hi Alice there", 8),  # no doubled space
        ("al there" + LEFT * 6 + "\t\t", "alan: there", 5),
    ],
)
def test_tab_completes_a_nick_and_cycles(keys: str, text: str, cursor: int) -> None:
    editor = _editor()
    assert editor.feed(keys) == []
    assert (editor.text, editor.cursor) == (text, cursor)


def test_completion_asks_for_the_nicks_each_time() -> None:
    nicks: list[str] = []
    editor = _editor(nicks)
    editor.feed("B\t")
    assert editor.text == "B"  # nobody yet
    nicks.append("Bob")  # (the view's members changed meanwhile)
    editor.feed("\t")
    assert editor.text == "Bob: "
    assert editor.feed("\r") == ["Bob: "]


def test_a_pasted_tab_is_text_not_a_completion() -> None:
    editor = _editor()
    editor.feed("\x1b[200~a\tb\x1b[201~")
    assert editor.text == "a\tb"
