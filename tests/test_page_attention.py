"""What the chat page does so that nothing that matters is missed, in real Chromium against a
real server: links (and nothing hostile becoming one), mentions found by the server's own
alike rule and shown apart, what arrived unseen (the title, the jump, the "New" divider),
desktop notifications of mentions, and nick completion with Tab; with several rooms open,
each room's own counts (its badge in the side list, the title counting all), notified
mentions from a room not shown, and Tab completing the room shown's nicks. And the page's
rule of a mention is the terminal client's (mentions.py), pair for pair on a corpus."""

from __future__ import annotations

import random
import re
import unicodedata
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from aiohttp_chat import mentions, protocol
from aiohttp_chat.client_completion import Members
from aiohttp_chat.client_terminal import LineEditor

from .browser import ChatPage
from .support.checks import eventually
from .support.pages import OpenPage, Serve, chat_url
from .support.peers import joined_peer, say

# ------------------------------------------------------------------------ alike names

NAMES = [
    "Alice", "alice", "ALICE", "A1ice", "AIice", "Al1ce", "\u0410lice",
    "\uff21\uff4c\uff49\uff43\uff45", "\U0001d504lice", "Bob_", "[Bob]", "rn", "m", "mike", "rnike",
    "Stra\u00dfe", "STRASSE", "strasse", "\u1e9e", "\u00df", "\u0131", "\u0130stanbul",
    "\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3", "\u03c3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
    "\u03c2", "\u03a3", "\u0345", "\u1f88", "\u03f4", "\u00b5",
    "e\u0301te", "\u00e9te", "Zo\u00eb", "Zoe\u0308", "\u01c5", "\ufb03", "\u2126", "\u212b",
    "\u210c", "\ufdfa",
    "\u13aa\u13b3\u13a9", "\uab7a\uab83", "\u13f7", "\u13fd", "\uabbf", "\u13a0\uab70",
    "x\u200bx", "a\ufe0fb", "a\u00adb", "\u115fname", "a\U000e0041b", "\u17b4x",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u4e2d\u6587\u540d", "\ud55c\uad6d\uc5b4",
    "\u0928\u092e\u0938\u094d\u0924\u0947", "\U0001f600smile", "O0o", "l1I|", "\u2460\u2461",
]  # fmt: skip


def _folded(name: str) -> str:
    """The folded form that the page compares names by until it has the server's rules."""
    drop = protocol._DROP_IGNORABLE
    once = unicodedata.normalize("NFKC", name.translate(drop)).casefold()
    return unicodedata.normalize("NFKC", once).translate(drop)


def _assigned() -> list[int]:
    """Every code point Python's Unicode database assigns, but private use and surrogates."""
    return [
        point
        for point in range(0x110000)
        if unicodedata.category(chr(point)) not in ("Cn", "Co", "Cs")
    ]


async def test_the_pages_skeleton_is_the_servers(serve: Serve, open_page: OpenPage) -> None:
    """mentions.js compares names as protocol.skeleton does: with the rules it loads from the
    server, for each name listed (look-alikes, sharp s, final sigma, combining marks,
    Cherokee, invisible characters) and for every single assigned code point; before them,
    by the folded form."""
    page = await open_page(await serve())
    with_rules = await page.page.evaluate(
        """async ([names, points]) => {
          const m = await import('/static/mentions.js?with-rules');
          m.useRules(await (await fetch('/static/confusables.json')).json());
          const one = points.map((p) => m.skeleton(String.fromCodePoint(p)));
          return { names: names.map(m.skeleton), points: one, using: m.usingRules() };
        }""",
        [NAMES, _assigned()],
    )
    assert with_rules["using"] is True
    assert with_rules["names"] == [protocol.skeleton(name) for name in NAMES]
    points = _assigned()
    differ = [
        (f"U+{point:04X}", js, protocol.skeleton(chr(point)))
        for point, js in zip(points, with_rules["points"], strict=True)
        if js != protocol.skeleton(chr(point))
    ]
    assert differ == [], differ[:20]

    without = await page.page.evaluate(
        """async ([names, points]) => {
          const m = await import('/static/mentions.js?without-rules');
          const one = points.map((p) => m.skeleton(String.fromCodePoint(p)));
          return { names: names.map(m.skeleton), points: one, using: m.usingRules() };
        }""",
        [NAMES, points],
    )
    assert without["using"] is False
    assert without["names"] == [_folded(name) for name in NAMES]
    differ = [
        (f"U+{point:04X}", js, _folded(chr(point)))
        for point, js in zip(points, without["points"], strict=True)
        if js != _folded(chr(point))
    ]
    assert differ == [], differ[:20]


# ------------------------------------------------------------------------ the rule of a mention

MENTION_NICKS = [
    "Alice", "alice", "bob_", "[Bob]", "Bob!", "-x-", "_", "O'Neil", "\u0410lice", "A1ice",
    "Stra\u00dfe", "\u03a3\u03b9\u03c3\u03c5\u03c6\u03bf\u03c2", "\u4e2d\u6587", "\U0001f600",
    "e\u0301te", "rn", "$money", "a.b", "x\u200by",
]  # fmt: skip
MENTION_MESSAGES = [
    "Alice", "@alice, look", "ALICE: there?", "thanks (Alice)!", "\u0410lice?", "\uff21lice",
    "line one\nand @Alice.", "tab\tAlice", "ideographic\u3000space\u3000Alice", "nbsp\u00a0Alice",
    "\u00abAlice\u00bb", "@@alice", "((((((Alice))))))", "@@@@@@alice:::::", "Alicent", "Alice's",
    "al-ice", "Alice-Marie", "malice", "$Alice", "+Alice", "|Alice|", "~alice~", "Al ice",
    "Alice\u200bX", "bob_: hi", "@bob_:", "bob__", "bob", "[Bob], hi", "(@[Bob])", "[[Bob]]",
    "Bob!", "Bob!!", "Bob?!", "hey -x-.", "--x--", "x", "_", "__", "_:", "O'Neil:", "'O'Neil'",
    "Stra\u00dfe.", "STRASSE!", "\u03c3\u03b9\u03c3\u03c5\u03c6\u03bf\u03c3", "\u4e2d\u6587\u3002",
    "\u300c\u4e2d\u6587\u300d", "\U0001f600!", "(\U0001f600)", "e\u0301te,", "\u00e9te", "m", "rn:",
    "$money$", "a.b.", ".a.b", "xy", "x\u200by", "\u2028Alice\u2029", "\u0085alice\u180e",
    "Alice\u00a0\u00a0", "", " ", "!!!", "@", "\u061fAlice\u061f", "\u00bfAlice?",
    "\u2018Alice\u2019", "\u201eAlice\u201c", "\u30fbAlice\u30fb",
    "\uff08Alice\uff09", "\U00010100Alice",
]  # fmt: skip
# What words are made of in the generated messages: letters of the nicks, punctuation of
# several categories, symbols, the White_Space characters and a few that are not.
PIECES = [
    "Alice", "alice", "bob", "Bob", "x", "-x-", "A1ice", "\u0410", "\u00df", "\u03c3", "\u4e2d",
    *"@,:.!?'()[]_-\u00ab\u00bb\u2018\u2019\u201c\u300c\u300d\u3002\u061f\u00bf\u2010\u30fb\uff01",
    *"$+|~^`=<>\u00a9\u20ac\u2192",
    *"\t\n\v\f\r \x85\xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000",
    "\u200b", "\u180e", "\u00ad", "\u0301",
]  # fmt: skip


def _generated(count: int) -> list[tuple[str, str]]:
    """`count` (message, nick) pairs, the same each run: pieces strung together, most with
    the nick among them (as written, or in upper or lower case)."""
    rng = random.Random(23)
    pairs = []
    for _ in range(count):
        nick = rng.choice(MENTION_NICKS)
        pieces = [rng.choice(PIECES) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.7:
            said = rng.choice([nick, nick.upper(), nick.lower()])
            pieces.insert(rng.randint(0, len(pieces)), said)
        pairs.append(("".join(pieces), nick))
    return pairs


async def test_the_page_finds_mentions_by_the_terminal_clients_rule(
    serve: Serve, open_page: OpenPage
) -> None:
    """mentions.js's `mentions` is mentions.py's `names` (one rule for both clients, the one
    mentions.py's docstring states): for every pair of a varied corpus, with the server's
    rules loaded; and its forms of a word are mentions.py's `forms`, for a word made with
    each code point as punctuation around it (the P* categories, every assigned one)."""
    pairs = [(m, n) for m in MENTION_MESSAGES for n in MENTION_NICKS] + _generated(3000)
    page = await open_page(await serve())
    found = await page.page.evaluate(
        """async (pairs) => {
          const m = await import('/static/mentions.js?parity');
          m.useRules(await (await fetch('/static/confusables.json')).json());
          return pairs.map(([text, nick]) => m.mentions(text, nick));
        }""",
        pairs,
    )
    differ = [
        (text, nick, js)
        for (text, nick), js in zip(pairs, found, strict=True)
        if js != mentions.names(text, nick)
    ]
    assert differ == [], differ[:20]
    generated = found[-3000:]  # many mentions in it, and many near misses
    assert 0.2 < sum(generated) / len(generated) < 0.8, sum(generated)

    words = [f"{chr(p)}{chr(p)}a{chr(p)}b{chr(p)}{chr(p)}" for p in _assigned() if p > 0x20]
    js_forms = await page.page.evaluate(
        """async (words) => {
          const m = await import('/static/mentions.js?parity');
          return words.map((word) => [...m.nickForms(word)].sort());
        }""",
        words,
    )
    differ_forms = [
        (word, js)
        for word, js in zip(words, js_forms, strict=True)
        if set(js) != mentions.forms(word)
    ]
    assert differ_forms == [], differ_forms[:20]


# ------------------------------------------------------------------------ links

LINKED = [  # a message, and the (text, href) of each link it holds
    ("see https://example.com/a.", [("https://example.com/a", "https://example.com/a")]),
    (
        "(https://en.wikipedia.org/wiki/Set_(mathematics)), or https://example.com/b?x=1&y=2!",
        [
            ("https://en.wikipedia.org/wiki/Set_(mathematics)",) * 2,
            ("https://example.com/b?x=1&y=2", "https://example.com/b?x=1&y=2"),
        ],
    ),
    ("'http://example.com/q?': \"https://example.com/it's\";", [
        ("http://example.com/q", "http://example.com/q"),
        ("https://example.com/it's", "https://example.com/it's"),
    ]),
    ("<https://example.com/angle>", [("https://example.com/angle", "https://example.com/angle")]),
    ("HTTPS://EXAMPLE.COM/Up", [("HTTPS://EXAMPLE.COM/Up", "https://example.com/Up")]),
    ("https://b\u00fccher.example/\u00e9", [
        ("https://b\u00fccher.example/\u00e9", "https://xn--bcher-kva.example/%C3%A9"),
    ]),
    # Hostile: quotes and angle brackets end the address, the rest stays text.
    ('https://example.com/"onmouseover="alert(1)', [("https://example.com/", "https://example.com/")]),
    ("https://example.com/x<img src=x onerror=alert(2)><b>bold</b>", [
        ("https://example.com/x", "https://example.com/x"),
    ]),
    ("https://example.com/'><script>alert(3)</script>", [
        ("https://example.com/", "https://example.com/"),
    ]),
    # No other scheme, nothing glued to a word, nothing without a host.
    ("javascript:alert(4)", []),
    ("JaVaScRiPt://example.com/%0aalert(5)", []),
    ("data:text/html,<script>alert(6)</script>", []),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==", []),
    ("ftp://example.com/f mailto:someone@example.com ws://example.com/chat", []),
    ("xhttps://example.com/glued http:// https:/// http://[::1", []),
    # What is shown is where it goes: no user name or password making a host look like
    # another's, no invisible format character (U+202E turns what follows around) in it.
    ("https://paypal.com@evil.example/login", []),
    ("https://:secret@example.com/ https://user:pw@example.com/", []),
    ("https://example.com/\u202egpj.exe", [("https://example.com/", "https://example.com/")]),
    ("https://example.com/a\u200bb", [("https://example.com/a", "https://example.com/a")]),
    # Closing brackets by the thousand: trimmed, the page going on (once quadratic).
    ("https://a/" + ")" * 4085, [("https://a/", "https://a/")]),
]  # fmt: skip


async def test_web_addresses_are_links_and_nothing_else_is(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        for text, _ in LINKED:
            await say(ws, text)
        await expect(page.log.locator("li.message")).to_have_count(len(LINKED))
        await ws.close()
    shown = await page.log.locator("li.message .text").evaluate_all(
        """spans => spans.map((span) => ({
          text: span.textContent,
          elements: [...span.querySelectorAll('*')].map((e) => e.tagName),
          links: [...span.querySelectorAll('a')].map((a) => ({
            text: a.textContent, href: a.getAttribute('href'), target: a.target, rel: a.rel,
            title: a.title,
            attributes: a.getAttributeNames(),
          })),
        }))"""
    )
    for (text, links), got in zip(LINKED, shown, strict=True):
        assert got["text"] == text  # every other part stays text, as written
        assert got["elements"] == ["A"] * len(links), text  # no element but the links
        assert [(a["text"], a["href"]) for a in got["links"]] == links, text
        for a in got["links"]:
            assert a["target"] == "_blank", text
            assert a["rel"] == "noopener noreferrer nofollow", text
            assert sorted(a["attributes"]) == ["href", "rel", "target", "title"], text
            assert a["title"] == a["href"], text  # where it goes, on hovering
    assert await page.log.locator("img, script, b, [onmouseover]").count() == 0
    page.assert_fine()  # no dialog opened, no script error, no CSP violation


async def test_trailing_brackets_are_trimmed_in_one_pass(serve: Serve, open_page: OpenPage) -> None:
    """links.js's `trimmed` walks back over a candidate once: messages of 4,096 characters
    that are nearly all brackets, many of them, are done with at once (quadratic, each of
    them alone froze the tab); brackets opened in the address stay, the others go."""
    page = await open_page(await serve())
    closing = "https://a/" + ")" * 4086
    balanced = "https://a/" + "(" * 2000 + ")" * 2086
    mixed = "https://a/" + "([{" * 500 + ")]}" * 865 + "."
    results = await page.page.evaluate(
        """async (candidates) => {
          const links = await import('/static/links.js');
          const out = [];
          for (let round = 0; round < 50; round += 1) out.push(...candidates.map(links.trimmed));
          return { trimmed: out.slice(0, candidates.length), count: out.length,
                   parts: links.linkParts(candidates[0] + " and " + candidates[1]) };
        }""",
        [closing, balanced, mixed],
    )
    assert len(closing) == len(balanced) == 4096
    assert results["count"] == 150
    assert results["trimmed"] == [
        "https://a/",
        "https://a/" + "(" * 2000 + ")" * 2000,
        "https://a/" + "([{" * 500 + ")]}" * 500,
    ]
    assert results["parts"] == [
        {"text": "https://a/", "href": "https://a/"},
        {"text": ")" * 4086 + " and "},
        {"text": balanced[: 10 + 4000], "href": "https://a/" + "(" * 2000 + ")" * 2000},
        {"text": ")" * 86},
    ]


async def test_a_very_long_address_wraps_on_a_phone(serve: Serve, open_page: OpenPage) -> None:
    origin = await serve()
    page = await open_page(origin, viewport={"width": 360, "height": 640}, is_mobile=True)
    await page.join("Alice", "Lounge")
    url = "https://example.com/" + "a1b2c3d4e5" * 198  # 2,000 characters
    assert len(url) == 2000
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        await say(ws, f"look: {url}.")
        await ws.close()
    link = page.log.locator("li.message a")
    await expect(link).to_have_attribute("href", url)
    sizes = await page.page.evaluate(
        """() => {
          const log = document.querySelector('.pane:not([hidden]) .log');
          const link = log.querySelector('a').getBoundingClientRect();
          return { page: document.documentElement.scrollWidth, width: window.innerWidth,
                   log: log.scrollWidth, logWidth: log.clientWidth,
                   linkRight: link.right, linkHeight: link.height };
        }"""
    )
    assert sizes["page"] <= sizes["width"], sizes  # no sideways scrolling of the page
    assert sizes["log"] <= sizes["logWidth"], sizes  # nor of the log
    assert sizes["linkRight"] <= sizes["width"], sizes
    assert sizes["linkHeight"] > 200, sizes  # wrapped over many lines


# ------------------------------------------------------------------------ mentions

# A probe of the browser's own API: each notification the page makes is recorded.
RECORD_NOTIFICATIONS = """
window.notified = [];
window.notifications = [];  // the Notification objects themselves, to click
window.permissionAsked = 0;
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) {
    super(title, options);
    window.notified.push({ title, body: options?.body ?? "" });
    window.notifications.push(this);
  }
  static requestPermission(...args) {
    window.permissionAsked += 1;
    return Real.requestPermission(...args);
  }
};
"""


async def notified(page: ChatPage) -> list[dict[str, str]]:
    result: list[dict[str, str]] = await page.page.evaluate("window.notified")
    return result


def message(page: ChatPage, text: str) -> Any:
    """The log's message whose text is `text`."""
    return page.log.locator("li.message").filter(has=page.page.get_by_text(text, exact=True))


async def background(page: ChatPage, text: str) -> str:
    colour: str = await message(page, text).evaluate("li => getComputedStyle(li).backgroundColor")
    return colour


async def rules_loaded(page: ChatPage) -> None:
    """Once the page compares names by the server's rules (as soon as it loaded them)."""
    script = "import('/static/mentions.js').then((m) => m.usingRules())"
    await eventually(lambda: page.page.evaluate(script), 10)


async def test_a_message_naming_you_stands_out_and_is_announced(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    await rules_loaded(page)
    naming = ["@alice: look", "ALICE, look", "thanks A1ice!", "(\u0410lice) Cyrillic",
              "\uff21\uff4c\uff49\uff43\uff45 fullwidth"]  # fmt: skip
    others = ["hello all", "Alicessa is not you", "malice", "Alice's cat"]
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        for text in [*others, *naming]:
            await say(ws, text)
        await page.expect_line(naming[-1])
        await page.type("I am Alice")  # one's own is never a mention
        await expect(page.log.locator("li.message.sent")).to_have_count(1)
        await ws.close()

    plain = await background(page, "hello all")
    own = await background(page, "I am Alice")
    for text in naming:
        assert await background(page, text) not in (plain, own), text
        assert "Mentions you:" in await message(page, text).aria_snapshot(), (
            text
        )  # what a reader hears
    for text in others:
        assert await background(page, text) == plain, text
        assert "Mentions you" not in await message(page, text).aria_snapshot(), text
    assert "Mentions you" not in await page.log.locator("li.mine").aria_snapshot()


async def test_a_mention_while_the_tab_is_hidden_raises_a_notification_once_turned_on(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin, scripts=(RECORD_NOTIFICATIONS,), permissions=["notifications"])
    await page.join("Alice", "Lounge")
    button = page.page.get_by_role("button", name="Notify me of mentions")
    await expect(button).to_have_attribute("aria-pressed", "false")
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        await page.set_tab_hidden(True)
        await say(ws, "Alice: not yet on")
        await page.expect_line("not yet on")
        assert await notified(page) == []  # off until turned on

        await button.click()
        await expect(button).to_have_attribute("aria-pressed", "true")
        await page.page.reload()  # the choice is remembered
        await page.expect_line("Connected to Lounge as Alice.")
        await expect(button).to_have_attribute("aria-pressed", "true")

        await page.set_tab_hidden(True)
        await say(ws, "nothing for Alicia")
        await say(ws, "@Alice: are you there?")
        await page.expect_line("are you there?")
        assert await notified(page) == [
            {"title": "Bob in Lounge", "body": "@Alice: are you there?"}
        ]

        await page.set_tab_hidden(False)  # looking: the page shows it, no notification
        await say(ws, "alice, welcome back")
        await page.expect_line("welcome back")
        assert len(await notified(page)) == 1

        await button.click()  # off again
        await expect(button).to_have_attribute("aria-pressed", "false")
        await page.set_tab_hidden(True)
        await say(ws, "Alice?")
        await page.expect_line("Alice?")
        assert len(await notified(page)) == 1
        await ws.close()
    assert await page.page.evaluate("window.permissionAsked") == 0  # it was granted already


async def test_the_permission_is_asked_only_when_the_button_is_clicked(
    serve: Serve, open_page: OpenPage
) -> None:
    page = await open_page(await serve(), scripts=(RECORD_NOTIFICATIONS,))
    await page.join("Alice", "Lounge")
    button = page.page.locator("#notify")
    await expect(button).to_have_text("Notify me of mentions")
    assert await page.page.evaluate("window.permissionAsked") == 0
    await button.click()  # headless Chromium answers for the person: no
    await eventually(lambda: page.page.evaluate("window.permissionAsked === 1"), 10)
    await expect(button).to_have_attribute("aria-pressed", "false")
    assert await notified(page) == []


# ------------------------------------------------------------------------ unread


async def test_the_title_counts_what_arrives_while_the_tab_is_hidden(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    await expect(page.page).to_have_title("Lounge · aiohttp-chat")
    new = page.log.locator("li", has_text=re.compile(r"^New$"))
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        await say(ws, "seen before")
        await page.expect_line("seen before")
        await page.set_tab_hidden(True)
        for text in ("one", "two", "three"):
            await say(ws, text)
        await expect(page.page).to_have_title("(3) Lounge · aiohttp-chat")
        await page.type("my own")  # neither one's own nor the room's system lines count
        carol = await joined_peer(session, chat_url(origin), "Carol", "Lounge")
        await page.expect_line("Carol joined Lounge")
        await expect(page.log.locator("li.message.sent")).to_have_count(1)
        await expect(page.page).to_have_title("(3) Lounge · aiohttp-chat")
        await say(ws, "alice: and you?")
        await expect(page.page).to_have_title("(4!) Lounge · aiohttp-chat")

        await page.set_tab_hidden(False)  # back: all of it is seen
        await expect(page.page).to_have_title("Lounge · aiohttp-chat")
        await expect(new).to_have_count(1)  # where Alice left off: before "one"
        assert await _after(page, new) == "one"

        await page.set_tab_hidden(True)  # away again: the divider moves on
        await say(carol, "four")
        await expect(page.page).to_have_title("(1) Lounge · aiohttp-chat")
        await page.set_tab_hidden(False)
        await expect(page.page).to_have_title("Lounge · aiohttp-chat")
        await expect(new).to_have_count(1)
        assert await _after(page, new) == "four"
        await carol.close()
        await ws.close()


async def _after(page: ChatPage, divider: Any) -> str:
    """The text of the message after `divider`."""
    text: str = await divider.evaluate(
        "d => d.nextElementSibling.querySelector('.text').textContent"
    )
    return text


async def test_scrolled_up_a_button_jumps_to_the_new_messages(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    jump = page.page.get_by_role("button", name=re.compile("new message"))
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        for n in range(40):
            await say(ws, f"earlier {n}")
        await page.expect_line("earlier 39")
        await page.log.evaluate("log => { log.scrollTop = 0; }")  # reading back
        await expect(page.log.locator("li", has_text="earlier 39")).not_to_be_in_viewport()
        for text in ("new one", "new two", "alice: new three"):
            await say(ws, text)
        await expect(jump).to_have_text("3 new messages, 1 mentioning you")
        await expect(page.page).to_have_title("(3!) Lounge · aiohttp-chat")
        await jump.click()
        await expect(page.log.locator("li.message", has_text="new one")).to_be_in_viewport()
        await expect(jump).to_be_hidden()  # all three were in view: seen
        await expect(page.page).to_have_title("Lounge · aiohttp-chat")
        await ws.close()


# ------------------------------------------------------------------------ completion


async def say_many(ws: Any, texts: list[str], batch: int = 250) -> None:
    """Send chat messages quickly: a batch at a time, then their replies."""
    for start in range(0, len(texts), batch):
        sent = texts[start : start + batch]
        for text in sent:
            await ws.send_json({"action": "chat_message", "message": text})
        replies = 0
        while replies < len(sent):
            reply = await ws.receive_json(timeout=10)
            if "success" in reply:
                assert reply["success"] is True, reply
                replies += 1


LOG_STATE = """(log) => {
  const lines = [...log.querySelectorAll('li.message')];
  const top = log.getBoundingClientRect().top;
  const at = (text) => {
    const line = lines.find((li) => li.querySelector('.text').textContent === text);
    return line ? line.getBoundingClientRect().top - top : null;
  };
  const at_ = Object.fromEntries(window.watched.map((t) => [t, at(t)]));
  const messages = lines.map((li) => li.querySelector('.text').textContent);
  return { lines: log.childElementCount, messages, scrollTop: log.scrollTop, at: at_ };
}"""


@pytest.mark.timeout(240)  # 4,000 messages to a page: each line is laid out with all others
async def test_scrolled_up_in_a_busy_room_the_log_stays_bounded(
    serve: Serve, open_page: OpenPage
) -> None:
    """Reading back while a room is busy (the tab hidden meanwhile): the log keeps its older
    lines for a while, and past twice its usual size (4,000 lines) drops the oldest all the
    same, down to 2,000, the line read staying where it is on the screen; what of the
    unseen was dropped is not counted any more."""
    origin = await serve(rate_limit=0)
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    jump = page.page.get_by_role("button", name=re.compile("new message"))
    async with aiohttp.ClientSession() as session:
        ws = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        await say_many(ws, [f"early {n}" for n in range(60)])
        await expect(message(page, "early 59")).to_have_count(1)
        await page.log.evaluate("log => { log.scrollTop = 0; }")  # reading back
        await page.set_tab_hidden(True)  # and away: nothing is seen meanwhile

        await say_many(ws, [f"later {n}" for n in range(2100)])
        await expect(message(page, "later 2099")).to_have_count(1, timeout=120_000)
        reading = "later 2050"  # read on, up to here
        await message(page, reading).evaluate("li => li.scrollIntoView({ block: 'start' })")
        await page.page.evaluate(f"window.watched = [{reading!r}]")
        before = await page.log.evaluate(LOG_STATE)
        assert before["messages"][0] == "early 0"  # not yet past the bound: all kept

        await say_many(ws, [f"then {n}" for n in range(1900)])
        await expect(message(page, "then 1899")).to_have_count(1, timeout=120_000)
        after = await page.log.evaluate(LOG_STATE)
        assert after["lines"] <= 4000, after["lines"]
        kept = after["messages"]
        assert len(kept) < 2100, len(kept)  # dropped down to 2,000 lines, then 1,900 came
        assert "early 0" not in kept and "later 0" not in kept and kept[-1] == "then 1899"
        assert after["at"][reading] is not None
        assert abs(after["at"][reading] - before["at"][reading]) <= 1, (before["at"], after["at"])
        # All that is kept came while away: unseen, counted; what was dropped is not.
        unseen = sum(1 for text in kept if not text.startswith("early"))
        await expect(jump).to_have_text(f"{unseen} new messages")
        await ws.close()


async def test_tab_completes_the_nicks_of_the_room_the_latest_speaker_first(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    page = await open_page(origin)
    await page.join("Alice", "Lounge")
    line = page.page.locator("#line")
    async with aiohttp.ClientSession() as session:
        peers = [await joined_peer(session, chat_url(origin), nick, "Lounge")
                 for nick in ("Bob", "Bobby", "Carol", "Alfred")]  # fmt: skip
        await expect(page.member_list).to_have_count(5)
        await say(peers[2], "Carol here")
        await say(peers[1], "Bobby here")
        await page.expect_line("Bobby here")

        await line.press_sequentially("bo")
        await line.press("Tab")
        await expect(line).to_have_value("Bobby: ")  # at the start of the line
        await line.press("Tab")
        await expect(line).to_have_value("Bob: ")  # Tab again: the next one
        await line.press("Tab")
        await expect(line).to_have_value("Bobby: ")  # and round
        await line.press_sequentially("ask @c")
        await line.press("Tab")
        await expect(line).to_have_value("Bobby: ask @Carol ")
        await line.press_sequentially("and A")
        await line.press("Tab")
        await expect(line).to_have_value("Bobby: ask @Carol and Alfred ")  # not Alice herself
        await expect(line).to_be_focused()

        await line.press_sequentially("zz")  # nothing to complete: Tab moves the focus
        await line.press("Tab")
        await expect(line).not_to_be_focused()
        await expect(line).to_have_value("Bobby: ask @Carol and Alfred zz")
        await line.focus()
        await line.press("Shift+Tab")  # never completes: the focus moves back
        await expect(line).not_to_be_focused()
        await line.fill("")
        await line.focus()
        await line.press("Tab")  # an empty line: the focus moves on
        await expect(line).not_to_be_focused()
        for ws in peers:
            await ws.close()


COMPLETION_NICKS = [
    "Alice", "alan", "alice", "ALICE", "Al", "Bob", "bob_", "[Bob]", "@bob", "Stra\u00dfe",
    "STRASSE", "strasse", "\u1e9eig", "\u03a3\u0391\u03a3", "\u03c3\u03b1\u03c2",
    "\u0130stanbul", "\u0131pek", "\u216b", "\ufb01ona", "\U0001f600x", "\uff5etilde",
    "\u00dcn\u00efc\u00f6d\u00e9", "Zo\u00eb", "Zoe\u0308", "A\u200bb", "Al\u202e",
    "Al ice", "Al\u00a0x", "Al\tx", "Al\x1b[2J", "\u13a0elta", "\uab70elta", "\u4e2d\u6587",
    "mike", "rnike", "m", "_", "1",
]  # fmt: skip
LINE_PIECES = [
    "a", "A", "al", "AL", "Al", "b", "bo", "@", "@a", "st", "ss", "\u00df", "\u03c3", "\u03c2",
    "\u0130", "i\u0307", "\u0131", "fi", "\U0001f600", "\uff5e", "zo", "\u13a0", "\uab70",
    "\u4e2d", "m", "r", "_", "1", "hi", ":", " ", " ", " ", "\n", "\t", "\u3000", "\u00a0",
    "\u2028", "\x1f", "\u200b", "\u202e",
]  # fmt: skip


def _completion_cases(count: int) -> list[dict[str, Any]]:
    """`count` cases, the same each run: the room's members, who spoke (in order), your own
    nick, a line with its cursor (in code points), and how many times Tab is pressed."""
    rng = random.Random(42)
    cases = []
    for _ in range(count):
        members = rng.sample(COMPLETION_NICKS, rng.randint(0, 12))
        speakers = [rng.choice(members) for _ in range(rng.randint(0, 6))] if members else []
        me = rng.choice([None, *members])
        text = "".join(rng.choice(LINE_PIECES) for _ in range(rng.randint(0, 6)))
        if members and rng.random() < 0.6:  # the start of a member's nick, as typed
            nick = rng.choice(members)
            typed = nick[: rng.randint(1, 3)]
            typed = rng.choice([typed, typed.upper(), typed.lower(), typed.casefold()])
            text += rng.choice(["", " ", "\n", "@", " @", "\u3000"]) + typed
        cursor = rng.randint(0, len(text)) if rng.random() < 0.3 else len(text)
        cases.append(
            {"members": members, "speakers": speakers, "me": me, "text": text,
             "cursor": cursor, "tabs": rng.randint(1, 4)}
        )  # fmt: skip
    return cases


def _units(text: str) -> int:
    """The length of `text` in UTF-16 units (JavaScript's)."""
    return len(text.encode("utf-16-le")) // 2


def _terminal_completes(case: dict[str, Any]) -> tuple[list[str], str, int]:
    """What the terminal client makes of a case: its ranking of the nicks, and its line."""
    members = Members()
    members.reset(case["members"])
    for nick in case["speakers"]:
        members.spoke(nick)
    names = members.ranked(own=case["me"])
    editor = LineEditor(nicks=lambda: names)
    editor.text, editor.cursor = case["text"], case["cursor"]
    assert editor.feed("\t" * case["tabs"]) == []
    return names, editor.text, _units(editor.text[: editor.cursor])


async def test_the_page_completes_nicks_by_the_terminal_clients_rule(
    serve: Serve, open_page: OpenPage
) -> None:
    """completion.js is client_completion.py's twin (the rule its docstring states): the
    same members ranked the same (who spoke, then the others by casefold, code point by
    code point), and Tab, pressed once or several times, making the same line with the
    cursor in the same place, for every case of a varied corpus: white space of several
    kinds, line feeds, `@`, case folding beyond lower case, nicks that cannot be typed."""
    cases = _completion_cases(3000)
    page = await open_page(await serve())
    done = await page.page.evaluate(
        """async (cases) => {
          const m = await import('/static/mentions.js');
          m.useRules(await (await fetch('/static/confusables.json')).json());
          const { Activity, Completion } = await import('/static/completion.js');
          return cases.map(({ members, speakers, me, text, cursor, tabs }) => {
            const present = new Set(members);
            const activity = new Activity(() => present);
            for (const nick of speakers) activity.spoke(nick);
            const names = activity.ranked(me);
            const completion = new Completion();
            const units = [...text].slice(0, cursor).join('').length;
            let line = { value: text, caret: units };
            for (let tab = 0; tab < tabs; tab += 1) line = completion.tab(line, names) ?? line;
            return [names, line.value, line.caret];
          });
        }""",
        cases,
    )
    differ = [
        (case, js, python)
        for case, js in zip(cases, done, strict=True)
        if tuple(js) != (python := _terminal_completes(case))
    ]
    assert differ == [], differ[:10]
    completed = sum(1 for case, js in zip(cases, done, strict=True) if js[1] != case["text"])
    assert 0.2 < completed / len(cases) < 0.8, completed  # many completions, many without


async def test_a_rooms_activity_keeps_only_its_members(serve: Serve, open_page: OpenPage) -> None:
    """completion.js's Activity remembers who spoke only while they are members: a room
    whose speakers come and go keeps no more of them than it has members."""
    page = await open_page(await serve())
    sizes = await page.page.evaluate(
        """async () => {
          const { Activity } = await import('/static/completion.js');
          const present = new Set(['Alice', 'Bob']);
          const activity = new Activity(() => present);
          const sizes = [];
          for (let n = 0; n < 5000; n += 1) {
            const nick = `guest${n}`;
            present.add(nick);
            activity.spoke(nick);
            present.delete(nick);  // and gone
            sizes.push(activity.spoken.size);
          }
          activity.spoke('Bob');
          const ranked = activity.ranked(null);
          return { most: Math.max(...sizes), last: [...activity.spoken], ranked };
        }"""
    )
    assert sizes["most"] <= 3, sizes["most"]
    assert sizes["last"] == ["Bob"]
    assert sizes["ranked"] == ["Bob", "Alice"]


# ------------------------------------------------------------------------ several rooms


def room_entry(page: ChatPage, room: str) -> Any:
    """The button of `room` in the side list of the rooms the page is in."""
    return page.page.locator("#my-rooms .switch").filter(
        has=page.page.locator(".name", has_text=re.compile(f"^{re.escape(room)}$"))
    )


async def test_each_room_open_counts_what_it_has_unseen_and_the_title_all_of_it(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        carol = await joined_peer(session, chat_url(origin), "Carol", "Kitchen")
        page = await open_page(origin)
        await page.join("Alice", "Lounge")
        await say(bob, "seen in Lounge")
        await page.expect_line("seen in Lounge")
        await page.type("/join Kitchen")  # Kitchen shown; Lounge beside it, hidden
        await page.expect_line("Connected to Kitchen as Alice.")
        await rules_loaded(page)
        lounge, kitchen = room_entry(page, "Lounge"), room_entry(page, "Kitchen")
        await expect(kitchen).to_have_attribute("aria-current", "true")
        await expect(page.page).to_have_title("Kitchen · aiohttp-chat")

        for text in ("one", "two", "three"):  # into the room not shown: its count
            await say(bob, text)
        await expect(lounge.locator(".counts")).to_have_text("3 (3 unread)")
        await expect(lounge.locator(".counts .badge")).to_have_text("3")
        await expect(page.page).to_have_title("(3) Kitchen · aiohttp-chat")
        await say(carol, "in Kitchen")  # the room shown, at its end: seen
        await page.expect_line("in Kitchen")
        await expect(kitchen.locator(".counts")).to_be_empty()
        await expect(kitchen.locator(".counts")).to_be_hidden()

        await say(bob, "@alice: look")  # a mention in the room not shown
        badge = lounge.locator(".counts .badge")
        await expect(badge).to_have_text("4!")
        await expect(lounge.locator(".counts")).to_have_attribute("data-mention", "")
        await expect(page.page).to_have_title("(4!) Kitchen · aiohttp-chat")
        # What a screen reader hears of the entry; the mention's own colour.
        await expect(
            page.page.get_by_role("button", name="Lounge (4 unread, 1 mentioning you)")
        ).to_be_visible()
        plain = await kitchen.evaluate("b => getComputedStyle(b).backgroundColor")
        for colour in await badge.evaluate(
            "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
        ):
            assert colour != plain
        await say(carol, "another in Kitchen")
        await page.expect_line("another in Kitchen")

        await lounge.click()  # shown, at its end: all of it seen
        await page.expect_line("@alice: look")
        await expect(lounge.locator(".counts")).to_be_empty()
        await expect(page.page).to_have_title("Lounge · aiohttp-chat")
        new = page.log.locator("li", has_text=re.compile(r"^New$"))
        await expect(new).to_have_count(1)
        assert await _after(page, new) == "one"  # where Alice left Lounge
        await expect(message(page, "@alice: look")).to_have_class(re.compile(r"\bmention\b"))

        await say(carol, "while Lounge is shown")  # now Kitchen is the one not shown
        await expect(kitchen.locator(".counts")).to_have_text("1 (1 unread)")
        await expect(page.page).to_have_title("(1) Lounge · aiohttp-chat")
        await page.set_tab_hidden(True)  # the tab hidden: the room shown counts too
        await say(bob, "while the tab is hidden")
        await expect(lounge.locator(".counts")).to_have_text("1 (1 unread)")
        await expect(page.page).to_have_title("(2) Lounge · aiohttp-chat")
        await page.set_tab_hidden(False)
        await expect(lounge.locator(".counts")).to_be_empty()
        await expect(page.page).to_have_title("(1) Lounge · aiohttp-chat")
        await page.page.get_by_role("button", name="Leave Kitchen").click()  # its count goes
        await expect(page.page).to_have_title("Lounge · aiohttp-chat")
        await bob.close()
        await carol.close()


async def test_a_mention_in_a_room_not_shown_is_notified_and_a_click_shows_that_room(
    serve: Serve, open_page: OpenPage
) -> None:
    origin = await serve(rate_limit=0)
    async with aiohttp.ClientSession() as session:
        bob = await joined_peer(session, chat_url(origin), "Bob", "Lounge")
        carol = await joined_peer(session, chat_url(origin), "Carol", "Kitchen")
        page = await open_page(
            origin, scripts=(RECORD_NOTIFICATIONS,), permissions=["notifications"]
        )
        await page.join("Alice", "Lounge")
        await page.page.get_by_role("button", name="Notify me of mentions").click()
        await page.type("/join Kitchen")
        await page.expect_line("Connected to Kitchen as Alice.")
        await rules_loaded(page)

        await say(carol, "Alice, here in Kitchen")  # the room shown, looked at: no need
        await page.expect_line("here in Kitchen")
        await say(bob, "nothing for Alicia")
        await say(bob, "@Alice: in Lounge")  # not shown, the tab visible: notified
        await expect(room_entry(page, "Lounge").locator(".badge")).to_have_text("2!")
        assert await notified(page) == [{"title": "Bob in Lounge", "body": "@Alice: in Lounge"}]

        # Tab completes the nicks of the room shown, not those of the other.
        line = page.page.locator("#line")
        await line.press_sequentially("b")
        await line.press("Tab")
        await expect(line).not_to_be_focused()  # no Bob in Kitchen: the focus moves on
        await line.fill("c")
        await line.focus()
        await line.press("Tab")
        await expect(line).to_have_value("Carol: ")
        await line.fill("")

        await page.page.evaluate("window.notifications[0].dispatchEvent(new Event('click'))")
        await expect(room_entry(page, "Lounge")).to_have_attribute("aria-current", "true")
        await page.expect_line("@Alice: in Lounge")
        await expect(room_entry(page, "Lounge").locator(".counts")).to_be_empty()
        await expect(page.page).to_have_title("Lounge · aiohttp-chat")
        await line.press_sequentially("b")
        await line.press("Tab")
        await expect(line).to_have_value("Bob: ")  # Lounge's members now
        await bob.close()
        await carol.close()
