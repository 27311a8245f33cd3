"""`mailsim headers FILE --plot` as a class sees it at 1280×720: a connected chain of the
servers the headers name (no "?"), stretches the headers do not cover drawn as such,
every word readable from the back row and covering no other, and each checking server's
SPF/DKIM/DMARC verdicts in a box."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgb
from matplotlib.offsetbox import AnnotationBbox
from matplotlib.text import Annotation

from mailsim import trace
from mailsim.plot import style
from mailsim.plot.received import GAP, GAP_COLOUR, chain, received, same_server
from mailsim.plot.route import CONTRAST, contrast, readable
from tests.test_figure_layout import drawn_texts, problems

SAMPLES = Path(__file__).parent / "data" / "headers"
MESSAGES = sorted([*SAMPLES.glob("*.eml"), SAMPLES / "mbox.mbox"])

# The servers each sample's chain shows, left to right, as drawn (40 characters at most).
CHAINS = {
    "clock-skew": ["client.example.org", "smtp.example.org", "relay.example.org",
                   "mx.example.com"],
    # Hop 1 began on out.example.org itself (Postfix's pickup, "from userid 1000").
    "dovecot-lmtp": ["out.example.org", "mx.example.net", "imap.example.net"],
    # Exchange names one machine VI1EUR04FT012.mail.protection… receiving and
    # VI1EUR04FT012.eop-eur04.prod.protection… sending on: one server, not two.
    "exchange": ["mail.example.org", "VI1EUR04FT012.mail.protection.outlook.c…",
                 "AM6P194CA0045.outlook.office365.com",
                 "AM0PR01MB1234.eurprd01.prod.exchangelab…",
                 "AM0PR01MB5678.eurprd01.prod.exchangelab…"],
    "exim": ["scanner.example.org", "client.example.org", "mx.example.net", "store.example.net"],
    "garbled": ["client.example.org", "relay.example.org", "mx.example.net"],
    # Google's relays between smtp.gmail.com and mail-sor-f41 wrote no header: a gap.
    "gmail": ["laptop.example.org", "smtp.gmail.com", "mail-sor-f41.google.example",
              "mx.google.com", "2002:a05:6a10:8f11:b0:4f2:1c3:5d2a"],
    "mbox": ["laptop.example.org", "smtp.example.org", "mx.example.net", "imap.example.net"],
    "missing-parts": ["app.example.org", "relay.example.org", "filter.example.net",
                      "mx.example.net"],
    "postfix": ["client.example.org", "smtp.example.org", "mx.example.net", "imap.example.net"],
    # qmail's two local hops ran on client.example (uid 1001) and on mail.example.net.
    "qmail": ["client.example", "mail.example.net"],
    "sendmail": ["client.example.com", "mail.example.com", "store.example.com"],
    "webmail": ["198.51.100.23", "webmail.example.net", "smtp.example.net", "mx.example.org"],
}  # fmt: skip
GAPS = {"gmail": [(1, 2)]}  # (from node, to node) of each stretch not in the headers


def route_of(path: Path) -> trace.Route:
    return trace.parse(path.read_text(encoding="utf-8"))


def names(ax) -> list[str]:
    """The server names in the order of their servers, left to right."""
    found = [t for t in ax.texts if (t.get_gid() or "").startswith("server ")]
    return [t.get_text() for t in sorted(found, key=lambda t: t.xy[0])]


def links(ax) -> dict[str, tuple[float, float]]:
    """Each hop's or gap's arrow by its gid: (from x, to x) in data coordinates."""
    return {
        a.get_gid(): (a.xyann[0], a.xy[0])
        for a in ax.texts
        if isinstance(a, Annotation) and a.arrow_patch is not None
    }


def test_every_sample_is_drawn():
    assert {p.stem for p in MESSAGES} == set(CHAINS)


@pytest.mark.parametrize("path", MESSAGES, ids=[p.stem for p in MESSAGES])
def test_the_chain_is_connected_and_names_the_hops_servers_in_order(path):
    route = route_of(path)
    ax = received(route)
    try:
        drawn = names(ax)
        assert drawn == CHAINS[path.stem]
        assert not any("?" in t.get_text() for t in ax.texts)
        # One marker per server, at 0, 1, 2 …
        xs = sorted(x for c in ax.collections for x, _ in c.get_offsets())
        assert xs == list(range(len(drawn)))
        # Every neighbour joined once: by a hop's arrow, or by a gap.
        arrows = links(ax)
        assert sorted(arrows.values()) == [(k, k + 1) for k in range(len(drawn) - 1)]
        gaps = sorted(v for gid, v in arrows.items() if gid.startswith("gap"))
        assert gaps == GAPS.get(path.stem, [])
        # Each hop's "by" server is drawn, in the order of the hops.
        servers = [hop.by for hop in route.hops if hop.by]
        at = [next(k for k, n in enumerate(CHAINS[path.stem]) if same_server(n, _cut(s)))
              for s in servers]  # fmt: skip
        assert at == sorted(at)
    finally:
        plt.close(ax.figure)


def _cut(name: str) -> str:
    return name if len(name) <= 40 else name[:39] + "…"


def test_a_gap_is_a_dotted_grey_link_that_says_so():
    ax = received(route_of(SAMPLES / "gmail.eml"))
    try:
        gap = next(a for a in ax.texts if a.get_gid() == "gap 1")
        assert gap.arrow_patch.get_linestyle() == ":"
        assert to_rgb(gap.arrow_patch.get_edgecolor()) == to_rgb(GAP_COLOUR)
        label = next(t for t in ax.texts if t.get_text() == GAP)
        assert label.xy == (1.5, 0)  # halfway between smtp.gmail.com and mail-sor-f41
        assert "dotted grey = not in the headers" in ax.get_title(loc="left")
        hop1 = next(a for a in ax.texts if a.get_gid() == "hop 1")
        assert hop1.arrow_patch.get_linestyle() == "-"  # TLS 1.3
        hop3 = next(a for a in ax.texts if a.get_gid() == "hop 3")
        assert hop3.arrow_patch.get_linestyle() == "--"  # Google's internal plain SMTP
    finally:
        plt.close(ax.figure)


def test_the_title_says_what_each_marker_shape_is():
    """■ ◆ ● in the key only for the shapes drawn: gmail's route ends at a mail server,
    postfix's at a mailbox server fed by LMTP."""
    for name, key in (
        ("gmail", "(oldest first; ■ = sender's program, ◆ = mail server; solid arrow = TLS"),
        ("postfix", "(oldest first; ■ = sender's program, ◆ = mail server, ● = mailbox server;"),
    ):
        ax = received(route_of(SAMPLES / f"{name}.eml"))
        try:
            assert key in ax.get_title(loc="left")
            named = sum(key.count(glyph) for glyph in "■◆●")
            assert len([c for c in ax.collections if c.get_offsets().shape[0]]) == named
        finally:
            plt.close(ax.figure)


@pytest.mark.parametrize("path", MESSAGES, ids=[p.stem for p in MESSAGES])
def test_no_word_covers_another_and_every_word_is_readable(path):
    ax = received(route_of(path))
    figure = ax.figure
    try:
        assert figure.bbox.size.tolist() == [1280, 720]
        assert problems(figure) == []
        with drawn_texts() as texts:
            figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        small = [
            t.get_text()
            for t in texts
            if t.get_fontsize() * figure.dpi / 72 < 14 or t.get_window_extent(renderer).height < 14
        ]
        faint = [t.get_text() for t in texts if contrast(t.get_color()) < CONTRAST]
        assert len(texts) >= 2 * len(CHAINS[path.stem])  # names, hop labels, titles
        assert not small, small
        assert not faint, faint
        assert not [t.get_text() for t in ax.texts if not t.get_visible()]  # none left out
    finally:
        plt.close(figure)


def verdict_box(ax, row: int = 0) -> tuple[AnnotationBbox, list]:
    box = next(a for a in ax.artists if a.get_gid() == f"checked {row}")
    return box, [area._text for area in box.offsetbox.get_children()]


def test_gmail_shows_what_mx_google_com_checked():
    """gmail.eml's Authentication-Results: mx.google.com; dkim=pass …; spf=pass …;
    dmarc=pass — shown SPF, DKIM, DMARC, under mx.google.com (node 3)."""
    ax = received(route_of(SAMPLES / "gmail.eml"))
    try:
        box, texts = verdict_box(ax)
        assert [t.get_text() for t in texts] == [
            "mx.google.com checked:", "✓ SPF pass", "✓ DKIM pass", "✓ DMARC pass",
        ]  # fmt: skip
        green = readable(style.OUTCOME["ok"])
        assert [to_rgb(t.get_color()) for t in texts[1:]] == [pytest.approx(green)] * 3
        assert box.xybox[0] == 3  # under mx.google.com, with a line up to it
        assert box.xy == (3, 0)
        assert box.arrow_patch is not None
        assert not [a for a in ax.artists if a.get_gid() == "checked 1"]
    finally:
        plt.close(ax.figure)


def test_failed_checks_are_said_in_words_and_colours():
    text = (SAMPLES / "gmail.eml").read_text(encoding="utf-8")
    text = text.replace("spf=pass", "spf=softfail").replace("dmarc=pass", "dmarc=fail")
    ax = received(trace.parse(text))
    try:
        _, texts = verdict_box(ax)
        assert [t.get_text() for t in texts[1:]] == [
            "~ SPF softfail",
            "✓ DKIM pass",
            "✗ DMARC fail",
        ]
        colours = [to_rgb(t.get_color()) for t in texts[1:]]
        assert colours[0] == pytest.approx(readable(style.OUTCOME["temporary"]))
        assert colours[2] == pytest.approx(readable(style.OUTCOME["permanent"]))
        assert all(contrast(c) >= CONTRAST for c in colours)
    finally:
        plt.close(ax.figure)


def test_a_header_without_a_checking_server_is_said_at_the_end_of_the_chain():
    """Exchange writes no authserv-id: "spf=pass (sender IP is …) …; dkim=pass …"."""
    route = route_of(SAMPLES / "exchange.eml")
    assert route.verdicts() == [(None, {"spf": "pass", "dkim": "pass", "dmarc": "pass"})]
    ax = received(route)
    try:
        box, texts = verdict_box(ax)
        assert texts[0].get_text() == "an unnamed server checked:"
        assert box.xybox[0] == 4  # at the end of the route, linked to no server
        assert box.arrow_patch is None
    finally:
        plt.close(ax.figure)


def test_a_message_without_checks_has_no_box():
    ax = received(route_of(SAMPLES / "qmail.eml"))
    try:
        assert not [a for a in ax.artists if (a.get_gid() or "").startswith("checked")]
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("mx.example.net; dkim=pass (2048-bit key) header.d=example.org; dkim-atps=neutral",
         ("mx.example.net", {"dkim": "pass"})),
        ("mx.example.net 1; spf=fail (a=b; dmarc=pass) smtp.mailfrom=x; dmarc=none",
         ("mx.example.net", {"spf": "fail", "dmarc": "none"})),
        ("spf=none smtp.mailfrom=x; arc=pass", (None, {"spf": "none", "arc": "pass"})),
        ("mx.example.net; none", ("mx.example.net", {})),
    ],
)  # fmt: skip
def test_authentication_results_are_read_per_checking_server(header, expected):
    """The authserv-id comes first (RFC 8601 §2.2); a comment holds no verdict."""
    route = trace.Route(hops=[], authentication=[header])
    assert route.verdicts() == [expected]


def test_local_hops_stay_on_their_machine():
    """qmail.eml: hop 1 "(qmail 4711 invoked by uid 1001)" and hop 3 "(qmail 12345
    invoked from network)" name no host: they ran on the machines beside them."""
    drawn = chain(route_of(SAMPLES / "qmail.eml").hops)
    assert drawn.nodes == ["client.example", "mail.example.net"]
    assert [(a, b, hop.index if hop else None) for a, b, hop in drawn.links] == [(0, 1, 2)]
    assert [(x, hop.index) for x, hop in drawn.local] == [(0, 1), (1, 3)]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("mx.example.net", "MX.Example.NET", True),
        ("VI1EUR04FT012.mail.protection.outlook.com",
         "VI1EUR04FT012.eop-eur04.prod.protection.outlook.com", True),
        ("mail.example.org", "mail.example.net", False),  # a common first label
        ("mx1.example.org", "mx1.example.net", False),  # too short to be a machine's own
        ("smtp.gmail.com", "mail-sor-f41.google.example", False),
    ],
)  # fmt: skip
def test_two_names_of_one_server(a, b, same):
    assert same_server(a, b) is same


def test_each_checking_server_gets_its_own_box():
    """Two Authentication-Results: the mailbox server's (newest, on top) and the MX's."""
    text = (SAMPLES / "postfix.eml").read_text(encoding="utf-8")
    text = (
        "Authentication-Results: imap.example.net; spf=softfail smtp.mailfrom=a@example.org;"
        " dmarc=fail header.from=example.org; dkim=none\n" + text
    )
    ax = received(trace.parse(text))
    try:
        newest, texts = verdict_box(ax, 0)
        assert [t.get_text() for t in texts] == [
            "imap.example.net checked:", "~ SPF softfail", "– DKIM none", "✗ DMARC fail",
        ]  # fmt: skip
        assert newest.xybox[0] == 3  # imap.example.net
        oldest, texts = verdict_box(ax, 1)
        assert [t.get_text() for t in texts] == ["mx.example.net checked:", "✓ DKIM pass"]
        assert oldest.xybox[0] == 2  # mx.example.net
        assert problems(ax.figure) == []
    finally:
        plt.close(ax.figure)


def test_a_bar_names_the_server_the_chain_drew():
    """qmail.eml's hop 3 names no server: it ran on mail.example.net, and says so."""
    ax = received(route_of(SAMPLES / "qmail.eml"))
    try:
        ticks = [t.get_text() for t in ax.figure.axes[1].get_yticklabels()]
        assert ticks == ["hop 2: → mail.example.net", "hop 3: → mail.example.net"]
        widths = [bar.get_width() for bar in ax.figure.axes[1].patches]
        assert widths == [2.0, 1.0]  # 07:59:58 → 08:00:00 → 08:00:01
    finally:
        plt.close(ax.figure)


def test_an_unreadable_hop_is_said_and_no_empty_frame_is_drawn():
    """garbled.eml: hop 2 is not a Received header; hops 1 and 3 have times, but no
    two in a row, so there is no delay to draw."""
    ax = received(route_of(SAMPLES / "garbled.eml"))
    try:
        assert ax.get_title(loc="left").endswith("; hop 2 unreadable)")
        bottom = ax.figure.axes[1]
        assert not bottom.axison
        assert [t.get_text() for t in bottom.texts] == [
            "No delays to show: no two hops in a row say when they took the message."
        ]
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(("hops", "size"), [(3, 300.0), (100, 38.9)])
def test_markers_shrink_to_stay_apart_on_a_long_route(hops, size):
    """A loop of 100 hops puts 101 servers 12.4 px apart: markers of 300 pt² (24 px
    across) would merge into one bar; at 70 % of the spacing each stays its own."""
    from tests.test_headers_limits import message

    ax = received(trace.parse(message(hops)))
    try:
        sizes = [float(s) for c in ax.collections for s in c.get_sizes()]
        assert sizes == [pytest.approx(size, abs=0.1)] * len(ax.collections)
        spacing = 0.98 * 1280 / (hops + 1 + 0.4)  # px between two servers
        assert size**0.5 * 100 / 72 < spacing
    finally:
        plt.close(ax.figure)
