"""Parser throughput on realistic ~150 KB synthetic pages, next to the bare selectolax parse.

Run: ``PYTHONPATH=. python bench/parsers.py``. For each parser it prints pages/s and
records/s, the bare parse of the same page (``LexborHTMLParser(html)`` + walking all text
nodes) and the ratio parser time / bare time (target: at most 3x). Not a test.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selectolax.lexbor import LexborHTMLParser

from pawatch.scraper.parsers import get_parser

TARGET_BYTES = 150_000
_WORDS = " ".join(
    [
        "Парламентская Ассамблея ОДКБ провела заседание Постоянной комиссии по вопросам",
        "обороны и безопасности участники обсудили модельные законы сотрудничество",
        "государств членов the Assembly discussed cooperation security defence members",
        "legislation model law",
    ]
).split()

SIDEBAR = """<aside class="sidebar"><div class="sidebar-title">National delegations</div>
<div class="item">Delegation of the National Assembly of the Republic of Belarus to the CSTO PA
consists of 7 deputies from the House of Representatives of the National Assembly of the
Republic of Belarus and 4 deputies from the Council of the Republic of the National Assembly of
the Republic of Belarus.</div>
<div class="item">Plenipotentiary representative of the National Assembly of the Republic of
Belarus: Viktor Kogut</div>
<div class="item">Website of the House of Representatives of the National Assembly of the
Republic of Belarus: <a href="http://house.gov.by/en/">house.gov.by</a></div>
<div class="item">Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA
consists of 8 deputies from the Mazhilis of the Parliament of the Republic of Kazakhstan and 8
members of the Senate of the Parliament of Kazakhstan.</div>
<div class="item">Plenipotentiary Representative of the Parliament of the Republic of
Kazakhstan, deputy Executive Secretary of the CSTO Parliamentary Assembly: Viktor Rogalev</div>
<div class="item">Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA
consists of 7 deputies.</div>
<div class="item">Delegation of the Federal Assembly of the Russian Federation to the CSTO PA
consists of 10 deputies of the State Duma of the Russian Federation and 12 members of the
Federation Council of the Russian Federation.</div>
<div class="item">Delegation of the Supreme Assembly of the Republic of Tajikistan to the CSTO
PA consists of 6 deputies of the National Assembly of the Supreme Assembly of the Republic of
Tajikistan and 6 deputies of the Assembly of Representatives of the Supreme Assembly of the
Republic of Tajikistan.</div></aside>"""


def _sentence(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choices(_WORDS, k=n)).capitalize() + "."


def _wrap(body: str) -> str:
    head = (
        '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>CSTO PA</title>'
        "<style>.x{color:red}</style><script>var a = 1;</script></head><body>"
        '<header><nav><ul><li><a href="/">Home</a></li><li><a href="/events">Events</a></li>'
        "</ul></nav></header>"
    )
    return f"{head}{body}<footer><p>CSTO PA</p></footer></body></html>"


def _article_paragraphs(rnd: random.Random, size: int) -> str:
    out: list[str] = []
    total = 0
    while total < size:
        para = f"<p>{_sentence(rnd, 25)} <b>{_sentence(rnd, 5)}</b> {_sentence(rnd, 20)}</p>\n"
        out.append(para)
        total += len(para.encode())
    return "".join(out)


def cms_page(rnd: random.Random) -> str:
    body = f'<div class="layout"><main><h1>{_sentence(rnd, 8)}</h1><div class="date">15 June 2021'
    body += f'</div><div class="text">{_article_paragraphs(rnd, TARGET_BYTES - 6000)}</div></main>'
    return _wrap(body + SIDEBAR + "</div>")


def country_page(rnd: random.Random) -> str:
    names = ", ".join(f"Name{chr(65 + i)} Surname{chr(65 + i)}" for i in range(12))
    main = (
        "<main><h1>Republic of Tajikistan</h1><p>Delegation of the Supreme Assembly of the "
        "Republic of Tajikistan to the CSTO PA consists of 6 deputies of the National Assembly "
        "of the Supreme Assembly of the Republic of Tajikistan and 6 deputies of the Assembly "
        f"of Representatives of the Supreme Assembly of the Republic of Tajikistan.</p><p>{names}"
        "</p><p>Plenipotentiary representative of the Supreme Assembly of the Republic of "
        "Tajikistan: Gafurzoda Abdukhalil</p><h2>Head of the delegation</h2><p>NameA SurnameA</p>"
        f"<p>Chairman</p>{_article_paragraphs(rnd, TARGET_BYTES - 8000)}</main>"
    )
    return _wrap(f'<div class="layout">{SIDEBAR}{main}</div>')


def news_page(rnd: random.Random) -> str:
    items = []
    for i in range(100):
        items.append(
            f'<div class="item"><div class="date">{1 + i % 28} June 2021</div>'
            f'<div class="title"><a href="/events/item-{i}">{_sentence(rnd, 10)}</a></div>'
            f'<div class="preview">{_sentence(rnd, 60)} {_sentence(rnd, 40)}</div></div>\n'
        )
    return _wrap(f'<div class="events-list">{"".join(items)}</div>{SIDEBAR}')


def roster_page(rnd: random.Random) -> str:
    rows = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i in range(450):
        tag = letters[i // 26 % 26] + letters[i % 26]
        rows.append(
            f'<tr class="member"><td class="fio"><a href="/deputies/{i}">'
            f"{rnd.choice(_WORDS).capitalize()}ov{tag} Name{tag} Otchestvo{tag}</a></td>"
            f'<td class="post">{_sentence(rnd, 8)}</td><td class="region">{_sentence(rnd, 6)}'
            "</td></tr>\n"
        )
    return _wrap(f'<table class="deputies">{"".join(rows)}</table>')


CASES: list[tuple[str, Callable[[random.Random], str], dict[str, Any]]] = [
    ("delegations", cms_page, {}),
    ("delegation-page", country_page, {"delegation": "TJ"}),
    ("news-list", news_page, {}),
    ("roster", roster_page, {"item": "tr.member", "name": ".fio", "role": ".post"}),
    ("page", cms_page, {"select": "main", "ignore": [r"Просмотров: \d+"]}),
]


def _rate(func: Callable[[], object], seconds: float) -> float:
    """Calls per second of CPU time over one batch of about ``seconds`` (CPU time, so that
    other processes on a busy machine do not count)."""
    count, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        func()
        count += 1
    return count / elapsed


def _paired_rates(
    parse: Callable[[], object], bare: Callable[[], object], rounds: int = 10
) -> tuple[float, float]:
    """Best calls per second of ``parse`` and of ``bare`` over ``rounds`` rounds, the two
    measured in turn within each round, so that a busy machine slows both alike."""
    best_parse = best_bare = 0.0
    for _ in range(rounds):
        best_parse = max(best_parse, _rate(parse, 0.15))
        best_bare = max(best_bare, _rate(bare, 0.15))
    return best_parse, best_bare


def bare_parse(html: str) -> int:
    tree = LexborHTMLParser(html)
    total = 0
    for node in tree.root.traverse(include_text=True) if tree.root is not None else []:
        if node.tag == "-text":
            total += len(node.text_content or "")
    return total


def main() -> None:
    rnd = random.Random(20261115)
    print(f"{'parser':16} {'KB':>5} {'records':>7} {'pages/s':>8} {'records/s':>10} "
          f"{'bare pages/s':>12} {'ratio':>6}")  # fmt: skip
    for name, build, options in CASES:
        html = build(rnd)
        parse = get_parser(name).func
        records = len(parse(html, "https://pacsto.org/events/x", options).records)
        pages, bare = _paired_rates(
            lambda: parse(html, "https://pacsto.org/events/x", options),  # noqa: B023
            lambda: bare_parse(html),  # noqa: B023
        )
        print(
            f"{name:16} {len(html.encode()) // 1000:>5} {records:>7} {pages:>8.0f} "
            f"{pages * records:>10.0f} {bare:>12.0f} {bare / pages:>5.2f}x"
        )


if __name__ == "__main__":
    main()
