"""End-to-end benchmark of ``pawatch run``: a cold cycle, then a cycle with K changed pages.

Run: ``python bench/cycle.py [--pages 1000] [--changed 20] [--hosts 4] [--concurrency 10]
[--parser page] [--keep DIR] [--profile] [--profile-second]`` (with the venv's python, or any
python that can import pawatch's dependencies; the repo root is put on ``sys.path``).

What happens:

1. A child process of this script (``--serve`` mode) generates N synthetic ~60 KB CMS pages
   (nav, sidebar, news list, paragraphs of mixed English/Russian text; about 1 in 5 encoded
   as windows-1251 and declared only in ``<meta>``) and serves them with ETags from one
   :class:`pawatch.demo.localserver.LocalServer` per host on 127.0.0.1, 127.0.0.2, ... (robots.txt
   allows everything). The measured process is therefore only pawatch. The parent talks to
   the server over its stdin/stdout (one JSON line per command).
2. A pawatch config is written to a temporary folder (``--keep DIR`` to keep it there):
   one ``[[sources]]`` per page, ``per_host_concurrency = --concurrency``, no per-host delay.
3. Cycle 1 (cold, empty DB): ``pawatch --config CFG -q run --format json`` as a subprocess;
   wall time (process start to exit, so interpreter start-up and imports count), user+sys CPU
   and peak RSS of that process (``os.wait4``), exit code, the JSON counts, the DB size.
4. K pages get a new body and ETag on the server; cycle 2 runs the same way and must report
   K changed and N-K not modified (the others answer 304).

The table shows the issue's targets next to the figures (cold < 2 s and < 100 MB, second
cycle < 1 s, DB < 20 MB). The script exits non-zero when pawatch fails, reports failed
sources or wrong counts, never because a target is missed: it is a benchmark, not a test.

``--profile`` runs the cold cycle under cProfile and prints the top 25 functions by
cumulative and by own time, plus own time grouped by area (HTTP client, event loop, sqlite,
hashing, compression, parsing, imports, pawatch code). ``--profile-second`` does the same for
the second cycle. A profiled cycle is slower than a plain one; its exit code is not reliable
(cProfile swallows ``SystemExit``), so only its counts are checked.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pstats
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_COLD_WALL = 2.0
TARGET_COLD_RSS_MB = 100.0
TARGET_SECOND_WALL = 1.0
TARGET_DB_MB = 20.0
OUTCOMES = ("new", "changed", "unchanged", "not_modified", "failed")

# ----------------------------------------------------------------------------- page text


def _words(text: str) -> list[str]:
    return text.split()


_RU = _words(
    "Парламентская Ассамблея Организации Договора о коллективной безопасности провела "
    "заседание Постоянной комиссии по вопросам обороны и безопасности в Санкт-Петербурге "
    "участники обсудили проекты модельных законов о противодействии терроризму и "
    "экстремизму миграции информационной безопасности а также план мероприятий на следующий "
    "год делегация Национального собрания Республики Беларусь Парламента Республики "
    "Казахстан Жогорку Кенеша Кыргызской Республики Федерального Собрания Российской "
    "Федерации Маджлиси Оли Республики Таджикистан Национального Собрания Республики "
    "Армения председатель комиссии отметил важность гармонизации национального "
    "законодательства государств членов в сфере военного сотрудничества пограничной "
    "политики и подготовки кадров депутаты приняли рекомендации по сближению "
    "законодательства и обменялись мнениями о ситуации в Центральной Азии на Южном Кавказе "
    "и в Восточной Европе по итогам встречи подписано совместное заявление пресс служба "
    "сообщает что следующее заседание состоится весной экспертный совет рассмотрел доклад о "
    "мониторинге правоприменительной практики генеральный секретарь выступил с "
    "приветственным словом представители министерств иностранных дел обороны внутренних дел "
    "приняли участие в работе круглого стола программа включает пленарное заседание секции "
    "брифинг для журналистов и посещение музея"
)
_EN = _words(
    "The Parliamentary Assembly of the Collective Security Treaty Organization held a "
    "meeting of the Standing Commission on defence and security issues in Saint Petersburg "
    "where the participants discussed draft model laws on countering terrorism and "
    "extremism migration information security and the plan of events for the next year the "
    "delegation of the National Assembly of the Republic of Belarus the Parliament of "
    "Kazakhstan the Jogorku Kenesh of the Kyrgyz Republic the Federal Assembly of the "
    "Russian Federation the Majlisi Oli of Tajikistan and the National Assembly of Armenia "
    "took part chairman noted the importance of harmonising national legislation of member "
    "states in military cooperation border policy and training of personnel deputies "
    "adopted recommendations exchanged views on the situation in Central Asia South "
    "Caucasus and Eastern Europe a joint statement was signed press service reports next "
    "session will take place in spring expert council considered report monitoring law "
    "enforcement practice secretary general delivered welcome speech representatives of "
    "ministries foreign affairs defence interior round table"
)
_NAMES = (
    "Виктор Когут",
    "Наталья Кочанова",
    "Маулен Ашимбаев",
    "Ерлан Кошанов",
    "Нурланбек Шакиев",
    "Вячеслав Володин",
    "Валентина Матвиенко",
    "Рустами Эмомали",
    "Ален Симонян",
    "Sergey Pospelov",
    "Andrey Kartapolov",
    "Kanybek Imanaliev",
    "Aidar Beisenov",
    "Konstantin Kosachev",
    "Mahmadtoir Zokirzoda",
    "Hakob Arshakyan",
    "Olga Timofeeva",
)
_SECTIONS = (
    ("Главная", "/"),
    ("Новости", "/news"),
    ("События", "/events"),
    ("Документы", "/docs"),
    ("Модельное законодательство", "/model-laws"),
    ("Совет Ассамблеи", "/council"),
    ("Постоянные комиссии", "/commissions"),
    ("Делегации", "/countries"),
    ("Секретариат", "/secretariat"),
    ("Фотогалерея", "/photo"),
    ("Видео", "/video"),
    ("Контакты", "/contacts"),
    ("English", "/en"),
    ("Мониторинг", "/monitoring"),
    ("Экспертно-консультативный совет", "/expert-council"),
    ("Молодежная парламентская ассамблея", "/youth"),
    ("Наблюдение за выборами", "/elections"),
    ("Архив", "/archive"),
)
_COUNTRIES = (
    ("Республика Беларусь", "belarus", "house.gov.by"),
    ("Республика Казахстан", "kazakhstan", "parlam.kz"),
    ("Кыргызская Республика", "kyrgyzstan", "kenesh.kg"),
    ("Российская Федерация", "russia", "duma.gov.ru"),
    ("Республика Таджикистан", "tajikistan", "majmilli.tj"),
    ("Республика Армения", "armenia", "parliament.am"),
)
_MONTHS = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)
PAGE_BYTES = 60_000
CP1251_EVERY = 5  # pages 5, 10, 15, ... are windows-1251 (declared in <meta> only)


def _zipf_weights(n: int) -> list[float]:
    return [1.0 / (i + 1) ** 0.9 for i in range(n)]


_RU_W = _zipf_weights(len(_RU))
_EN_W = _zipf_weights(len(_EN))


def _sentence(rng: random.Random, words: list[str], weights: list[float]) -> str:
    picked = rng.choices(words, weights, k=rng.randint(8, 24))
    if rng.random() < 0.3:
        picked.insert(rng.randrange(len(picked)), rng.choice(_NAMES))
    if rng.random() < 0.3:
        picked.insert(
            rng.randrange(len(picked)),
            f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(2015, 2026)} года",
        )
    if rng.random() < 0.15:
        picked.insert(rng.randrange(len(picked)), f"№ {rng.randint(1, 99)}-{rng.randint(1, 30)}")
    text = " ".join(picked)
    return text[0].upper() + text[1:] + rng.choice(".....!?;")


def _paragraph(rng: random.Random) -> str:
    ru = rng.random() < 0.65
    words, weights = (_RU, _RU_W) if ru else (_EN, _EN_W)
    return " ".join(_sentence(rng, words, weights) for _ in range(rng.randint(2, 6)))


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(2019, 2026)}"


def make_page(index: int, version: int, charset: str) -> bytes:
    """A ~60 KB CMS page; deterministic for (index, version)."""
    rng = random.Random(index * 1000 + version)
    title = _sentence(rng, _RU, _RU_W)[:90]
    nav = "\n".join(
        f'<li class="menu-item menu-item-{i}"><a href="{href}" class="menu-link">{name}</a>'
        for i, (name, href) in enumerate(_SECTIONS)
    )
    sidebar = "\n".join(
        f'<div class="country-block" id="c-{slug}"><a href="/countries/{slug}">'
        f'<img src="/static/flags/{slug}.png" alt="{name}" width="32" height="20"></a>'
        f'<div class="country-name">{name}</div><div class="country-info">'
        f"{_paragraph(rng)[:300]}</div>"
        f'<a class="ext" href="https://{site}/" rel="nofollow">{site}</a></div>'
        for name, slug, site in _COUNTRIES
    )
    head = (
        '<!DOCTYPE html>\n<html lang="ru">\n<head>\n'
        f'<meta charset="{charset}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title} | ПА ОДКБ</title>\n"
        '<link rel="stylesheet" href="/static/css/main.css?v=2.4.1">\n'
        '<link rel="icon" href="/favicon.ico">\n'
        f"<script>window.dataLayer=window.dataLayer||[];var pageId={index};</script>\n"
        '</head>\n<body class="page-template-default">\n'
        '<header class="site-header"><div class="container"><a class="logo" href="/">'
        '<img src="/static/img/logo.svg" alt="Парламентская Ассамблея ОДКБ"></a>'
        '<form class="search" action="/search"><input type="text" name="q" '
        'placeholder="Поиск по сайту"></form></div>\n'
        f'<nav class="main-nav"><ul class="menu">\n{nav}\n</ul></nav></header>\n'
        '<div class="container"><div class="breadcrumbs"><a href="/">Главная</a> / '
        f'<a href="/news">Новости</a> / <span>{title[:40]}</span></div>\n'
        f'<div class="row"><aside class="sidebar col-3">\n{sidebar}\n</aside>\n'
        f'<main class="content col-9"><h1 class="entry-title">{title}</h1>\n'
        f'<div class="entry-meta"><span class="date">{_date(rng)}</span> '
        f'<span class="views">Просмотров: {rng.randint(10, 9999)}</span>'
        f'<span class="rev">ред. {version}</span></div>\n<div class="entry-content">\n'
    )
    foot = (
        "</div></main></div></div>\n"
        '<footer class="site-footer"><div class="container">'
        "<p>© 2006–2026 Парламентская Ассамблея Организации Договора о коллективной "
        "безопасности. 190000, Санкт-Петербург, Шпалерная ул., 47, Таврический дворец.</p>"
        '<p>Тел.: +7 (812) 326-69-52, e-mail: <a href="mailto:info@paodkb.org">'
        "info@paodkb.org</a></p></div></footer>\n"
        '<script src="/static/js/main.js?v=2.4.1" defer></script>\n</body>\n</html>\n'
    )
    parts = [head]
    size = len(head.encode(charset)) + len(foot.encode(charset))
    n = 0
    while size < PAGE_BYTES:
        n += 1
        if n % 6 == 0:
            items = "".join(
                f'<li><a href="/news/{rng.randint(1000, 99999)}">{_sentence(rng, _RU, _RU_W)}'
                f'</a> <span class="date">{_date(rng)}</span></li>'
                for _ in range(rng.randint(3, 6))
            )
            chunk = f'<h3>Новости по теме</h3>\n<ul class="news-list">{items}</ul>\n'
        elif n % 4 == 0:
            chunk = f"<h2>{_sentence(rng, _EN, _EN_W)[:80]}</h2>\n"
        else:
            chunk = f"<p>{_paragraph(rng)}</p>\n"
        parts.append(chunk)
        size += len(chunk.encode(charset))
    parts.append(foot)
    return "".join(parts).encode(charset)


def page_charset(index: int) -> str:
    return "windows-1251" if index % CP1251_EVERY == 0 else "utf-8"


def page_path(index: int) -> str:
    return f"/news/{index:04d}.html"


def source_id(index: int) -> str:
    return f"p{index:04d}"


# ----------------------------------------------------------------------------- server side


def serve(args: argparse.Namespace) -> int:
    """The ``--serve`` child: serve the pages, obey JSON commands on stdin."""
    import resource

    from pawatch.demo.localserver import LocalServer, Route

    def route(index: int, version: int) -> Route:
        charset = page_charset(index)
        body = make_page(index, version, charset)
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        # bytes bodies: windows-1251 pages get a bare text/html (charset only in <meta>)
        ctype = "text/html; charset=utf-8" if charset == "utf-8" else "text/html"
        return Route(body=body, content_type=ctype, etag=etag)

    t0 = time.perf_counter()
    servers = [LocalServer(f"127.0.0.{h + 1}").start() for h in range(args.hosts)]
    robots = Route(body="User-agent: *\nAllow: /\n", content_type="text/plain; charset=utf-8")
    versions = [0] * (args.pages + 1)
    raw_bytes = 0
    for server in servers:
        server.set("/robots.txt", robots)
    for i in range(1, args.pages + 1):
        r = route(i, 0)
        raw_bytes += len(r.payload())
        servers[(i - 1) % args.hosts].set(page_path(i), r)

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply(
        {
            "hosts": [s.base_url for s in servers],
            "generate_s": round(time.perf_counter() - t0, 2),
            "avg_page_bytes": raw_bytes // max(1, args.pages),
        }
    )
    rng = random.Random(12345)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "stats":  # server CPU and requests since the last stats
            ru = resource.getrusage(resource.RUSAGE_SELF)
            reqs = [r for s in servers for r in s.requests]
            for s in servers:
                with s._lock:  # keep routes, drop the request log
                    s._requests.clear()
            reply(
                {
                    "cpu_s": ru.ru_utime + ru.ru_stime,
                    "requests": len(reqs),
                    "conditional": sum(1 for r in reqs if "if-none-match" in r.headers),
                    "robots": sum(1 for r in reqs if r.path == "/robots.txt"),
                    "connections": sum(s.connections for s in servers),
                }
            )
        elif op == "change":
            picked = sorted(rng.sample(range(1, args.pages + 1), cmd["count"]))
            for i in picked:
                versions[i] += 1
                servers[(i - 1) % args.hosts].set(page_path(i), route(i, versions[i]))
            reply({"changed": [source_id(i) for i in picked]})
        elif op == "quit":
            break
    for s in servers:
        s.close()
    return 0


class ServerProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            "--pages",
            str(args.pages),
            "--hosts",
            str(args.hosts),
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench: the page server exited (code {self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, SystemExit, ValueError):
                self.call("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ----------------------------------------------------------------------------- client side


def write_config(folder: Path, hosts: list[str], args: argparse.Namespace) -> Path:
    lines = [
        "# written by bench/cycle.py",
        "[storage]",
        f'path = "{folder / "bench.db"}"',
        "[http]",
        'user_agent = "pawatch-bench/0.1 (+https://github.com/pawatch/pawatch)"',
        f"per_host_concurrency = {args.concurrency}",
        "per_host_delay = 0",
        f"global_concurrency = {max(16, args.hosts * args.concurrency)}",
        "respect_robots = true",
        "",
    ]
    for i in range(1, args.pages + 1):
        lines += [
            "[[sources]]",
            f'id = "{source_id(i)}"',
            f'url = "{hosts[(i - 1) % len(hosts)]}{page_path(i)}"',
            f'parser = "{args.parser}"',
            'schedule = "1h"',
            "",
        ]
    path = folder / "bench.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def pawatch_command() -> list[str]:
    """The installed console script next to this python, else ``python -m pawatch.cli``."""
    script = Path(sys.executable).parent / "pawatch"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pawatch.cli"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PAWATCH_CONFIG", None)
    env.pop("PAWATCH_DB", None)
    return env


@dataclass
class Cycle:
    name: str
    pages: int
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    code: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    db: dict[str, float] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""
    profile: Path | None = None


def run_pawatch(
    name: str, cfg: Path, folder: Path, pages: int, profile: Path | None = None
) -> Cycle:
    args = ["--config", str(cfg), "-q", "run", "--format", "json"]
    if profile is not None:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "pawatch.cli", *args]
    else:
        cmd = [*pawatch_command(), *args]
    out_path, err_path = folder / f"{name}.stdout", folder / f"{name}.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=child_env()
        )
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    cycle = Cycle(
        name,
        pages,
        wall=wall,
        cpu=ru.ru_utime + ru.ru_stime,
        rss_mb=ru.ru_maxrss / 1024,
        code=code,
        profile=profile,
    )  # ru_maxrss: KiB
    cycle.stderr = err_path.read_text(encoding="utf-8", errors="replace")
    text = out_path.read_text(encoding="utf-8", errors="replace")
    try:
        cycle.summary = json.loads(text)
        cycle.counts = {k: int(cycle.summary["counts"].get(k, 0)) for k in OUTCOMES}
    except (ValueError, KeyError, TypeError):
        cycle.summary = {}
    return cycle


def db_sizes(db_path: Path) -> dict[str, float]:
    def size(p: Path) -> int:
        return p.stat().st_size if p.exists() else 0

    mb = 1024 * 1024
    wal = Path(str(db_path) + "-wal")
    sizes = {"db_mb": size(db_path) / mb, "wal_mb": size(wal) / mb}
    if not db_path.exists():
        return sizes
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw, stored, n = conn.execute(
            "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(LENGTH(data)), 0), COUNT(*) FROM bodies"
        ).fetchone()
        sizes["bodies"] = n
        sizes["raw_mb"] = raw / mb
        sizes["stored_mb"] = stored / mb
        sizes["ratio"] = raw / stored if stored else 0.0
    except sqlite3.Error as exc:
        print(f"bench: cannot read {db_path}: {exc}", file=sys.stderr)
    finally:
        conn.close()
    sizes["db_ckpt_mb"] = size(db_path) / mb + size(wal) / mb
    return sizes


# ----------------------------------------------------------------------------- reporting

_AREAS = (  # (area, substrings of the profile entry's file or name), first match wins
    (
        "imports/start-up",
        (
            "<frozen importlib",
            "importlib/",
            "<built-in method _imp.",
            "marshal.loads",
            "_io.open_code",
            "method 'read' of '_io.BufferedReader'",
            "__build_class__",
            "builtins.exec",
            "builtins.compile",
            "re/_",
            "dataclasses.py:884",
        ),
    ),
    ("TLS context (CA bundle load)", ("_ssl._SSLContext", "certifi", "/ssl.py")),
    ("sqlite", ("sqlite3", "sqlite_utils")),
    ("hashing", ("_hashlib", "hashlib", "openssl_sha")),
    ("compression", ("zstandard", "zstd", "ZstdCompressor")),
    (
        "parsing/charset",
        (
            "selectolax",
            "charset_normalizer",
            "scraper/charset",
            "scraper/parsers",
            "codecs",
            "decode",
        ),
    ),
    ("config/TOML", ("tomllib", "config/loader", "config/model", "apscheduler")),
    ("http client (httpx/httpcore/h11/anyio)", ("httpx", "httpcore", "h11", "anyio", "sniffio")),
    ("event loop/sockets", ("asyncio", "selectors", "socket", "select.epoll", "contextvars")),
    ("pawatch code", ("pawatch/", "scraper/", "storage/", "config/")),
    ("cli (click)", ("click",)),
)


def _area(func: tuple[str, int, str]) -> str:
    text = f"{func[0]}:{func[1]}:{func[2]}"
    for name, needles in _AREAS:
        if any(n in text for n in needles):
            return name
    return "other"


def print_profile(path: Path, title: str, top: int = 25) -> None:
    stats = pstats.Stats(str(path))
    stats.strip_dirs()
    print(f"\n=== profile of {title}: top {top} by cumulative time ===")
    stats.sort_stats("cumulative").print_stats(top)
    print(f"=== profile of {title}: top {top} by own time (tottime) ===")
    stats.sort_stats("tottime").print_stats(top)
    full = pstats.Stats(str(path))  # unstripped paths for the grouping
    by_area: dict[str, float] = {}
    total = 0.0
    for func, (_cc, _nc, tt, _ct, _callers) in full.stats.items():  # type: ignore[attr-defined]
        by_area[_area(func)] = by_area.get(_area(func), 0.0) + tt
        total += tt
    print(f"=== {title}: own time by area (total {total:.2f} s profiled) ===")
    for name, tt in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"  {name:36s} {tt:7.3f} s  {100 * tt / total if total else 0:5.1f} %")


def _mark(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"< {target:g} {'ok' if value < target else 'MISS'}"


def print_table(cycles: list[Cycle]) -> None:
    head = (
        "cycle",
        "pages",
        "wall s",
        "target",
        "CPU s",
        "RSS MB",
        "target",
        "DB MB",
        "target",
        "new/chg/unch/304/fail",
        "srv CPU s",
        "reqs",
    )
    rows = [head]
    for i, c in enumerate(cycles):
        cold = i == 0
        last = i == len(cycles) - 1
        db_total = c.db.get("db_mb", 0) + c.db.get("wal_mb", 0)
        counts = "/".join(str(c.counts.get(k, "?")) for k in OUTCOMES)
        rows.append(
            (
                c.name,
                str(c.pages),
                f"{c.wall:.2f}",
                _mark(c.wall, TARGET_COLD_WALL if cold else TARGET_SECOND_WALL),
                f"{c.cpu:.2f}",
                f"{c.rss_mb:.1f}",
                _mark(c.rss_mb, TARGET_COLD_RSS_MB if cold else None),
                f"{db_total:.1f}",
                _mark(db_total, TARGET_DB_MB if last else None),
                counts,
                f"{c.server.get('cpu_s', 0):.2f}",
                str(c.server.get("requests", "?")),
            )
        )
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    for n, r in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for c in cycles:
        d = c.db
        print(
            f"{c.name}: exit {c.code}; DB {d.get('db_mb', 0):.2f} MB + WAL "
            f"{d.get('wal_mb', 0):.2f} MB at exit, {d.get('db_ckpt_mb', 0):.2f} MB after "
            f"wal_checkpoint(TRUNCATE); {d.get('bodies', 0)} bodies, "
            f"{d.get('raw_mb', 0):.1f} MB raw -> {d.get('stored_mb', 0):.1f} MB zstd "
            f"({d.get('ratio', 0):.1f}x); server: {c.server.get('requests', '?')} requests "
            f"({c.server.get('conditional', '?')} conditional, {c.server.get('robots', '?')} "
            f"robots.txt), {c.server.get('connections', '?')} connections so far"
        )


def check_cycle(c: Cycle, expect: dict[str, int], profiled: bool) -> list[str]:
    problems = []
    if not c.summary:
        problems.append(f"{c.name}: no JSON summary on stdout (exit {c.code})")
        return problems
    if not profiled and c.code != 0:
        problems.append(f"{c.name}: pawatch exited {c.code}")
    for k in OUTCOMES:
        want = expect.get(k, 0)
        if c.counts.get(k, 0) != want:
            problems.append(f"{c.name}: {k} = {c.counts.get(k, 0)}, expected {want}")
    errors = c.summary.get("errors") or {}
    for sid, err in list(errors.items())[:5]:
        problems.append(f"{c.name}: {sid} failed: {err}")
    return problems


class _Abort(Exception):
    """The cold cycle produced nothing to build on: skip the second one."""


def startup_time(runs: int = 5) -> float:
    """Median wall time of ``pawatch --help`` (interpreter start + imports of the CLI)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            [*pawatch_command(), "--help"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),
            check=False,
        )
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=1000, help="synthetic pages (1000)")
    parser.add_argument("--changed", type=int, default=20, help="pages changed for cycle 2")
    parser.add_argument("--hosts", type=int, default=4, help="127.0.0.x hosts serving them")
    parser.add_argument("--concurrency", type=int, default=10, help="per_host_concurrency")
    parser.add_argument("--parser", default="page", help="parser of every source (page)")
    parser.add_argument("--keep", metavar="DIR", help="keep config, DB, outputs in DIR")
    parser.add_argument("--profile", action="store_true", help="cProfile the cold cycle")
    parser.add_argument("--profile-second", action="store_true", help="cProfile the second cycle")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args)
    if not 1 <= args.hosts <= 254 or args.pages < 1 or not 0 <= args.changed <= args.pages:
        parser.error("need 1 <= --hosts <= 254, --pages >= 1, 0 <= --changed <= --pages")

    if args.keep:
        folder = Path(args.keep).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("bench.db*"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="pawatch-bench-"))
    print(
        f"bench: {args.pages} pages on {args.hosts} hosts, per-host concurrency "
        f"{args.concurrency}, parser {args.parser!r}, {args.changed} changed in cycle 2; "
        f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; folder {folder}"
    )
    server = ServerProcess(args)
    cycles: list[Cycle] = []
    problems: list[str] = []
    try:
        hello = server.hello
        print(
            f"server: {', '.join(hello['hosts'])}; pages generated in {hello['generate_s']} s, "
            f"{hello['avg_page_bytes']} bytes on average"
        )
        cfg = write_config(folder, hello["hosts"], args)
        db_path = folder / "bench.db"
        startup = startup_time()
        print(f"startup: `pawatch --help` takes {startup:.3f} s wall (median of 5)")

        server.call("stats")  # reset the server's request log and take a CPU baseline
        cpu0 = server.call("stats")["cpu_s"]
        cold = run_pawatch(
            "cold", cfg, folder, args.pages, folder / "cold.prof" if args.profile else None
        )
        stats = server.call("stats")
        cold.server = {**stats, "cpu_s": stats["cpu_s"] - cpu0}
        cold.db = db_sizes(db_path)
        cycles.append(cold)
        problems += check_cycle(cold, {"new": args.pages}, args.profile)
        if not cold.summary:
            raise _Abort

        changed = server.call("change", count=args.changed)["changed"]
        cpu0 = server.call("stats")["cpu_s"]
        second = run_pawatch(
            "second",
            cfg,
            folder,
            args.pages,
            folder / "second.prof" if args.profile_second else None,
        )
        stats = server.call("stats")
        second.server = {**stats, "cpu_s": stats["cpu_s"] - cpu0}
        second.db = db_sizes(db_path)
        cycles.append(second)
        problems += check_cycle(
            second,
            {"changed": args.changed, "not_modified": args.pages - args.changed},
            args.profile_second,
        )
        if second.summary and sorted(
            second.summary.get("sources", {}).get("changed", [])
        ) != sorted(changed):
            problems.append("second: the changed sources are not the pages changed on the server")
    except _Abort:
        pass
    finally:
        server.close()

    print()
    print_table(cycles)
    for c in cycles:
        if c.profile is not None and c.profile.exists():
            print_profile(c.profile, f"the {c.name} cycle")
        if c.stderr.strip():
            tail = c.stderr.strip().splitlines()[-10:]
            print(f"\n{c.name} stderr (last {len(tail)} lines):\n  " + "\n  ".join(tail))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
