"""The wheel built from the repository installs exactly one top-level package, ``pawatch``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # Build from a copy (symlinks kept as links): setuptools writes build/ and *.egg-info.
    tree = build / "tree"
    shutil.copytree(
        ROOT,
        tree,
        symlinks=True,
        ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
            str(tree),
        ],
        check=True,
        cwd=build,
        env={"PATH": "/usr/bin:/bin", "HOME": str(build), "TMPDIR": str(build)},
    )
    (built,) = out.glob("pawatch-*.whl")
    return built


def test_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"pawatch"}
    top_level = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    if top_level:  # setuptools writes it; it must name pawatch alone
        text = zipfile.ZipFile(wheel).read(top_level[0]).decode()
        assert text.split() == ["pawatch"]


def test_wheel_carries_the_subpackages_and_their_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "pawatch/scraper/fetch.py",
        "pawatch/scraper/parsers/composition.py",
        "pawatch/storage/schema.py",
        "pawatch/config/default.toml",
        "pawatch/config/delegations.toml",
        "pawatch/cli/__init__.py",
        "pawatch/demo/localserver.py",
        "pawatch/templates/report.html",
    ):
        assert expected in names, expected
    assert any(n.startswith("pawatch/demo/site/") for n in names)
    assert any(n.endswith("/licenses/LICENSE") or n.endswith("/LICENSE") for n in names)


def test_aiosmtpd_is_an_extra_not_a_runtime_dependency(wheel: Path) -> None:
    (meta,) = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA")]
    requires = [
        line
        for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    aiosmtpd = [line for line in requires if "aiosmtpd" in line]
    assert aiosmtpd and all("extra == " in line for line in aiosmtpd)
