"""The lock files pin every package with its files' hashes, and `make` installs with
--require-hashes (a pin added by hand without hashes fails here: run `make lock`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("requirements.lock", "requirements-demo.lock", "requirements-dev.lock")


def requirements(path: Path) -> dict[str, list[str]]:
    """{'name==version': [hashes]} of a pip requirements file (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *options = line.split()
        out[spec] = [o.split("=", 1)[1] for o in options if o.startswith("--hash=")]
    return out


@pytest.mark.parametrize("name", LOCKS)
def test_every_requirement_is_pinned_with_hashes(name: str) -> None:
    reqs = requirements(ROOT / name)
    assert reqs, name
    for spec, hashes in reqs.items():
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[^=\s]+", spec), f"{name}: {spec} is not pinned"
        assert hashes, f"{name}: {spec} has no --hash (regenerate with `make lock`)"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), spec


def test_the_dev_lock_holds_the_runtime_and_demo_pins() -> None:
    dev = set(requirements(ROOT / "requirements-dev.lock"))
    norm = {s.lower().replace("_", "-") for s in dev}
    for name in LOCKS[:2]:
        for spec in requirements(ROOT / name):
            assert spec.lower().replace("_", "-") in norm, f"{spec} of {name} differs in dev"


def test_make_installs_with_require_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines() if "pip install" in line and " -r " in line]
    assert len(installs) >= 3
    assert all("--require-hashes" in line for line in installs if ".lockvenv" not in line)
