"""The `page` parser (parse, ``visible_lines``) on the benchmark site's pages: this tree's
``scraper/parsers/page.py`` and ``text.py`` against the same files at another git revision.

Run from the repo root: ``.venv/bin/python bench/visible_lines.py [--before REV]``. It starts
``../shared/bench/site.py`` (``--site PATH``; or reads a running one with ``--base-url``),
fetches its N pages (every 10th in windows-1251), decodes them as pawatch does, checks that
both revisions give the same lines for every page, then times both in alternating rounds
(CPU time, so other processes count less) and prints the median ms per page [min-max]:
``parse`` (``LexborHTMLParser`` alone), ``page parser`` (``parse_page`` with its default
``select = "body"``: ``parse_html``, the body, ``visible_lines``) and the difference (what
pawatch adds to the bare parse). Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import httpx
from selectolax.lexbor import LexborHTMLParser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pawatch.scraper.charset import decode_body  # noqa: E402
from pawatch.scraper.parsers import page as page_now  # noqa: E402
from pawatch.scraper.parsers import text as text_now  # noqa: E402
from pawatch.scraper.parsers.base import ParseResult  # noqa: E402
from pawatch.scraper.parsers.records import PageText  # noqa: E402

TEXT_PATH = "scraper/parsers/text.py"
PAGE_PATH = "scraper/parsers/page.py"
TEXT_MODULE = "pawatch.scraper.parsers.text"


def _module_at(rev: str, path: str) -> types.ModuleType:
    """``path`` as it was at git revision ``rev``, as a module (its imports of the text
    module get the one in ``sys.modules``)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(f"{Path(path).stem}_at_{rev}")
    sys.modules[module.__name__] = module  # (its dataclasses look their module up there)
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def _page_parser_at(rev: str) -> Callable[[str], list[str]]:
    """The `page` parser (``select = "body"``, the default) of revision ``rev`` with that
    revision's text module; its text as lines."""
    text_then = _module_at(rev, TEXT_PATH)
    sys.modules[TEXT_MODULE] = text_then
    try:
        page_then = _module_at(rev, PAGE_PATH)
    finally:
        sys.modules[TEXT_MODULE] = text_now
    return _lines_of(page_then.parse_page)


def _lines_of(parse_page: Callable[..., ParseResult]) -> Callable[[str], list[str]]:
    def run(html: str) -> list[str]:
        record = parse_page(html, "http://127.0.0.1/p/0.html", {}).records[0]
        assert isinstance(record, PageText)
        return record.text.split("\n")

    return run


def _find_site(given: str | None) -> Path:
    candidates = [Path(given)] if given else []
    candidates += [p / "shared" / "bench" / "site.py" for p in ROOT.parents]
    for path in candidates:
        if path.is_file():
            return path
    raise SystemExit("site.py not found: pass --site PATH or --base-url URL")


def _fetch(base_url: str, count: int) -> list[str]:
    pages: list[str] = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for number in range(count):
            response = client.get(f"/p/{number}.html")
            response.raise_for_status()
            content_type = response.headers.get("content-type")
            pages.append(decode_body(response.content, content_type).text)
    return pages


def _serve_and_fetch(site: Path, count: int) -> list[str]:
    with tempfile.TemporaryDirectory() as work:
        port_file = Path(work) / "port"
        args = [sys.executable, str(site), "--n", str(count), "--port", "0"]
        args += ["--port-file", str(port_file), "--cp1251-every", "10"]
        server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"{site} did not start")
                time.sleep(0.05)
            return _fetch(f"http://127.0.0.1:{port_file.read_text().strip()}", count)
        finally:
            server.terminate()
            server.wait(timeout=10)


def _bare_parse(html: str) -> object:
    return LexborHTMLParser(html).body


def _ms_per_page(func: Callable[[str], object], pages: list[str]) -> float:
    start = time.process_time()
    for html in pages:
        func(html)
    return (time.process_time() - start) * 1000 / len(pages)


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.3f} [{min(values):.3f}-{max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="2f408fd", help="git revision to compare with")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--site", help="path of the benchmark site's site.py")
    parser.add_argument("--base-url", help="a running benchmark site, e.g. http://127.0.0.1:8000")
    args = parser.parse_args()

    if args.base_url:
        pages = _fetch(args.base_url, args.pages)
    else:
        pages = _serve_and_fetch(_find_site(args.site), args.pages)
    before, after = _page_parser_at(args.before), _lines_of(page_now.parse_page)
    differing = sum(1 for html in pages if before(html) != after(html))
    if differing:
        raise SystemExit(f"{differing} of {len(pages)} pages give different lines")
    kb = sum(len(html.encode()) for html in pages) / len(pages) / 1000
    print(f"{len(pages)} pages, {kb:.0f} KB each on average, same lines before and after")

    timings: dict[str, list[float]] = {"parse": [], "before": [], "after": []}
    for number in range(args.rounds):  # alternate the order so that drift hits both alike
        order = ["parse", "before", "after"] if number % 2 == 0 else ["after", "before", "parse"]
        for name in order:
            func = {"parse": _bare_parse, "before": before, "after": after}[name]
            timings[name].append(_ms_per_page(func, pages))
    parse = timings["parse"]
    print(f"{'ms per page, median [min-max]':34} {'page parser':>20} {'minus parse':>22}")
    print(f"{'parse (LexborHTMLParser)':34} {_summary(parse):>20}")
    for name, label in (("before", f"before ({args.before})"), ("after", "after (this tree)")):
        minus = [total - bare for total, bare in zip(timings[name], parse, strict=True)]
        print(f"{label:34} {_summary(timings[name]):>20} {_summary(minus):>22}")
    ratio = statistics.median(timings["after"]) / statistics.median(timings["before"])
    print(f"after / before: {ratio:.2f}x")


if __name__ == "__main__":
    main()
