"""``visible_lines`` against the implementation it replaced (kept here as the reference):
the same lines, and the same tree afterwards, on every HTML fixture, on hand-written edge
cases and on generated pages full of the characters and shapes that make text handling
go wrong."""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser, LexborNode

from pawatch.scraper.charset import decode_body
from pawatch.scraper.parsers import text as text_module
from pawatch.scraper.parsers.base import ParseError
from pawatch.scraper.parsers.page import parse_page
from pawatch.scraper.parsers.records import PageText
from pawatch.scraper.parsers.text import BLOCK_TAGS, HIDDEN_TAGS, parse_html, visible_lines

FIXTURES = Path(__file__).parent / "fixtures"

# ---------------------------------------------------------------- the reference
# visible_lines as it was before it walked the tree once (commit 2f408fd), with the helpers
# it used then, frozen here so that later changes to text.py cannot move the reference.

_REF_INVISIBLE_RE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")
_REF_INVISIBLE_CHARS = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_REF_BLOCK_SELECTOR = ",".join(sorted(BLOCK_TAGS | {"br"}))
_REF_HIDDEN_SELECTOR = ",".join(sorted(HIDDEN_TAGS))


def _ref_remove_invisible(text: str) -> str:
    if text.isascii() or not any(ch in text for ch in _REF_INVISIBLE_CHARS):
        return text
    return _REF_INVISIBLE_RE.sub("", text)


def _ref_normalize_space(text: str) -> str:
    if text.isprintable() and "  " not in text:
        return text.strip(" ")
    return " ".join(_ref_remove_invisible(text).split())


def reference_visible_lines(node: LexborNode | None) -> list[str]:
    if node is None:
        return []
    for hidden in node.css(_REF_HIDDEN_SELECTOR):
        hidden.decompose()
    for block in node.css(_REF_BLOCK_SELECTOR):
        block.insert_before("\f")
        block.insert_after("\f")
    chunks = _ref_remove_invisible(node.text()).replace("\f", "\ue000").split("\ue000")
    return [line for line in map(_ref_normalize_space, chunks) if line]


# ---------------------------------------------------------------- comparing


def _roots(tree: LexborHTMLParser) -> list[LexborNode | None]:
    return [tree.body, tree.root, tree.head]


def assert_same(html: str) -> None:
    """Both implementations on body, root and head, each on a fresh tree; then, on one tree
    each, on every element in document order (later calls see the earlier calls' marks and
    removals, as in the parsers that read a container and then the whole scope): the same
    lines every time and the same tree at the end."""
    for pick in range(3):
        old_tree, new_tree = LexborHTMLParser(html), LexborHTMLParser(html)
        old_lines = reference_visible_lines(_roots(old_tree)[pick])
        assert visible_lines(_roots(new_tree)[pick]) == old_lines, (pick, html[:300])
        assert new_tree.html == old_tree.html
    old_tree, new_tree = LexborHTMLParser(html), LexborHTMLParser(html)
    old_nodes = old_tree.css("*")[:150]
    new_nodes = new_tree.css("*")[:150]
    assert [n.tag for n in old_nodes] == [n.tag for n in new_nodes]
    for old_node, new_node in zip(old_nodes, new_nodes, strict=True):
        assert visible_lines(new_node) == reference_visible_lines(old_node), (
            old_node.tag,
            html[:300],
        )
    assert new_tree.html == old_tree.html


def _fixture_pages() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".html", ".htm"))


def _fixture_html(path: Path) -> str:
    return decode_body(path.read_bytes(), "text/html").text


def test_fixtures_are_found_and_have_text() -> None:
    pages = _fixture_pages()
    assert len(pages) >= 30
    with_text = [p for p in pages if reference_visible_lines(parse_html(_fixture_html(p)).body)]
    assert len(with_text) >= len(pages) - 3  # (a few are pages with no text on purpose)


@pytest.mark.parametrize("path", _fixture_pages(), ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_same_as_reference_on_fixture(path: Path) -> None:
    assert_same(_fixture_html(path))


EDGE_CASES = [
    "",
    " ",
    "\n\n",
    "plain text in body",
    "a<br>b<br/>c<br><br>d",
    "<div>a<p>b <i>c</i></p>d<br>e<table><tr><td>f</td><td>g</td></tr></table></div>",
    "<div><div><div>deep</div>er</div>est</div>after",
    "<p>one</p>\n  <p>two</p>  \n\t<p>three</p>",
    "<span>in<div>side</div>line</span>tail",
    "<b>bold <p>para</p> still bold</b>",
    "<div>text<script>var x = '<p>no</p>';</script>more</div>",
    "<p>a<style>p{}</style>b</p><noscript><p>ns</p></noscript>c",
    "<div><template><p>tpl</p></template>visible</div>",
    "<div><svg><title>svg title</title><text>svg text</text></svg>after svg</div>",
    "<div><math><mi>x</mi></math>after math</div>",
    "<div><iframe src='x'>fallback</iframe><object>obj</object><canvas>cv</canvas>ok</div>",
    "<p>   </p><div>\n\t</div><li> </li>",
    "<p>a&nbsp;&nbsp;b&nbsp;</p><p>&nbsp;</p>",
    "<p>soft&shy;hyphen</p><p>zero\u200bwidth\u200c\u200d\u2060\ufeffjoin</p>",
    "<p>\u00ad</p><p>\u200b</p><div>x\u200b \u200by</div>",
    "<p>thin\u2009space\u202fnarrow\u3000ideographic\u2028line\u2029para</p>",
    "<p>ctrl\x0bvt\x1cfs\x1dgs\x1ers\x1fus\x85nel</p>",
    "<p>form\x0cfeed</p><p>private\ue000use\ue000mark</p>",
    "<p>tab\there</p><pre>pre  formatted\n  lines</pre>",
    "<p>carriage\r\nreturn\rcr</p>",
    "<!-- a comment --><p>x<!-- inner -->y</p><!---->",
    "<ul><li>one<li>two<ul><li>two.one</li></ul><li>three</ul>",
    "<ol><li><p>para in li</p></li></ol><dl><dt>t</dt><dd>d</dd></dl>",
    "<table><caption>cap</caption><thead><tr><th>h1<th>h2</thead>"
    "<tbody><tr><td>1<td>2<tr><td>3</td></tr></tbody><tfoot><tr><td>f</td></tr></tfoot></table>",
    "<table><tr><td>cell</td></tr>stray text<tr><td>cell2</td></tr></table>",
    "<div><p>unclosed<div>nested<span>open</div></p>end",
    "<p>a</b></i></p></div></span>b",
    "<select><option>one</option><option>two</option></select><textarea>t <p> x</textarea>",
    "<details><summary>sum</summary>body</details><dialog>dlg</dialog>",
    "<form><fieldset><legend>leg</legend><input value='v'>label</fieldset></form>",
    "<figure><img alt='alt'><figcaption>cap</figcaption></figure><hr>after hr",
    "<center>c</center><dir><li>d</li></dir><menu><li>m</li></menu><address>a</address>",
    "<header>h</header><nav>n</nav><main>m</main><aside>a</aside><footer>f</footer>",
    "<article><section><hgroup><h1>1</h1><h2>2</h2></hgroup></section></article>",
    "<h3>3</h3><h4>4</h4><h5>5</h5><h6>6</h6><blockquote>q</blockquote>",
    "<my-element>custom<my-block>tags</my-block></my-element><x-div>x</x-div>",
    "<DIV>UPPER<P>CASE</P></DIV><Br>tags",
    "<a href='/x'>link <div>block in link</div> tail</a>",
    "<p>Парламентская&nbsp;Ассамблея ОДКБ</p><p>  Делегация \n состоит из 7 депутатов </p>",
    "<html><head><title>t</title><script>s</script></head><body>b</body></html>",
    "<html><head><title>t</title></head><frameset><frame src='x'></frameset></html>",
    "<body><p>one body</p></body><body><p>second body tag</p></body>",
    "<p>" + "word " * 500 + "</p>",
    "<div>" * 200 + "deep" + "</div>" * 200,
    "<p>x</p>" * 300,
    "<<>>&&;<p>&lt;p&gt; &amp;amp; &#12; &#xe000; &#160;&#8203;</p>",
    "<p>\U0001f600 emoji \U0001f1f7\U0001f1fa flag</p><p>\udcff</p>",
]


@pytest.mark.parametrize("html", EDGE_CASES, ids=lambda h: repr(h[:40]))
def test_same_as_reference_on_edge_case(html: str) -> None:
    try:
        html.encode()
    except UnicodeEncodeError:
        html = html.encode("utf-8", "replace").decode()  # (a lone surrogate, as a page has it)
    assert_same(html)


def test_edge_cases_read_as_a_person_sees_them() -> None:
    """A few of the cases above, spelled out (so that the reference itself is checked)."""

    def lines(html: str) -> list[str]:
        return visible_lines(parse_html(html).body)

    assert lines("<span>in<div>side</div>line</span>tail") == ["in", "side", "linetail"]
    assert lines("<p>a&nbsp;&nbsp;b&nbsp;</p><p>&nbsp;</p>") == ["a b"]
    assert lines("<p>soft&shy;hyphen</p><p>zero\u200bwidth</p>") == ["softhyphen", "zerowidth"]
    assert lines("<p>thin\u2009space\u3000ideographic</p>") == ["thin space ideographic"]
    assert lines("<p>form\x0cfeed</p><p>private\ue000use</p>") == [
        "form",
        "feed",
        "private",
        "use",
    ]
    assert lines("<div><template><p>tpl</p></template>visible</div>") == ["visible"]
    assert lines("<!-- c --><p>x<!-- inner -->y</p>") == ["xy"]
    assert lines("<ul><li>one<li>two</ul>") == ["one", "two"]
    assert lines("") == []
    assert visible_lines(None) == []


# ---------------------------------------------------------------- generated pages

_TEXT_PIECES = [
    "word",
    "Делегация",
    " ",
    "  ",
    "\n",
    "\n   ",
    "\t",
    "&nbsp;",
    "\xa0",
    "&shy;",
    "\u200b",
    "\ufeff",
    "\u2009",
    "\u3000",
    "\x0c",
    "\ue000",
    "\x85",
    "\r\n",
    "&amp;",
    "7",
    "-",
]
_INLINE = ["b", "i", "span", "a", "em", "time", "small", "my-tag"]
_BLOCKS = sorted(BLOCK_TAGS - {"html", "body"})
_HIDDEN = sorted(HIDDEN_TAGS - {"head"})


def _random_html(rnd: random.Random, depth: int = 0) -> str:
    parts: list[str] = []
    for _ in range(rnd.randint(0, 6)):
        roll = rnd.random()
        if roll < 0.45 or depth > 5:
            parts.append("".join(rnd.choices(_TEXT_PIECES, k=rnd.randint(1, 4))))
        elif roll < 0.6:
            tag = rnd.choice(_INLINE)
            parts.append(f"<{tag}>{_random_html(rnd, depth + 1)}</{tag}>")
        elif roll < 0.85:
            tag = rnd.choice(_BLOCKS)
            close = "" if rnd.random() < 0.15 else f"</{tag}>"  # some left open
            parts.append(f"<{tag}>{_random_html(rnd, depth + 1)}{close}")
        elif roll < 0.9:
            parts.append(rnd.choice(["<br>", "<hr>", "<!-- c -->", "<img alt=x>"]))
        else:
            tag = rnd.choice(_HIDDEN)
            parts.append(f"<{tag}>{_random_html(rnd, depth + 1)}</{tag}>")
    return "".join(parts)


def _generated(count: int, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    for _ in range(count):
        yield "<html><head><title>t</title></head><body>" + _random_html(rnd) + "</body></html>"


@pytest.mark.parametrize("seed", range(8))
def test_same_as_reference_on_generated_pages(seed: int) -> None:
    for html in _generated(60, seed):
        assert_same(html)


# ---------------------------------------------------------------- the premises


def test_printable_text_has_no_whitespace_but_spaces_and_no_invisible_character() -> None:
    """The fast path takes a printable line's stripped form as its normal form: true only
    while no whitespace but the plain space, and no invisible character, is printable."""
    printable_spaces = [
        hex(cp) for cp in range(sys.maxunicode + 1) if chr(cp).isspace() and chr(cp).isprintable()
    ]
    assert printable_spaces == ["0x20"]
    assert not any(ch.isprintable() for ch in "\u00ad\u200b\u200c\u200d\u2060\ufeff\ue000\f")


@pytest.mark.parametrize(
    ("tags", "ids"),
    [(BLOCK_TAGS | {"br"}, text_module._BREAK_IDS), (HIDDEN_TAGS, text_module._HIDDEN_IDS)],
    ids=["blocks", "hidden"],
)
def test_tag_ids_are_those_of_parsed_elements(tags: frozenset[str], ids: frozenset[int]) -> None:
    """The walk sorts elements by Lexbor's tag id: an element parsed in a document (any of
    the listed tags, others, custom ones) has one of the ids exactly when its tag is listed,
    in every document (the ids were taken from another one)."""
    assert len(ids) == len(tags)
    html = (
        "<html><head><title>t</title><style></style><script></script><noscript></noscript>"
        "<template></template></head><body>"
        + "".join(f"<{t}></{t}>" for t in sorted(tags) if t not in {"td", "th", "tr", "option"})
        + "<table><caption></caption><thead><tr><th></th></tr></thead><tbody><tr><td></td>"
        "</tr></tbody><tfoot></tfoot></table><select><option></option></select>"
        "<my-div></my-div><x-table></x-table><custom-p></custom-p><span></span><a></a>"
        "<svg><title></title><g></g></svg><math><mi></mi></math><frameset></frameset>"
        "</body></html>"
    )
    seen: set[str] = set()
    for document in (LexborHTMLParser(html), LexborHTMLParser("<p>x</p>" + html)):
        assert document.root is not None
        for node in document.root.traverse():
            assert node.tag is not None
            seen.add(node.tag)
            assert (node.tag_id in ids) == (node.tag in tags), node.tag
    assert tags <= seen


# ---------------------------------------------------------------- the page parser's body


def _page_text(html: str, selector: str, strip: list[str]) -> tuple[str, str]:
    try:
        result = parse_page(html, "https://pacsto.org/", {"select": selector, "strip": strip})
    except ParseError as exc:
        return "error", str(exc).replace(repr(selector), "<selector>")
    record = result.records[0]
    assert isinstance(record, PageText)
    return "text", record.text


@pytest.mark.parametrize("strip", [[], ["body"], ["p", "div"]], ids=repr)
def test_page_parser_default_body_is_what_css_finds(strip: list[str]) -> None:
    """The `page` parser's default ``select = "body"`` takes the parser's body instead of
    running ``css("body")``: the same text (or the same error) as the CSS path, which an
    equivalent selector still takes."""
    pages = [_fixture_html(p) for p in _fixture_pages()] + EDGE_CASES[:-2]
    pages = [html.encode("utf-8", "replace").decode() for html in pages]
    outcomes = set()
    for html in pages:
        fast = _page_text(html, "body", strip)
        assert fast == _page_text(html, "html > body", strip), html[:200]
        outcomes.add(fast[0] if fast[0] == "text" else fast[1])
    assert "text" in outcomes or strip == ["body"]
    assert "page: select <selector> matched nothing" in outcomes  # (frameset, stripped body)
