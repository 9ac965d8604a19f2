"""The lock files pin what pyproject.toml asks for: a dependency added without `make lock`
fails here, with the command to run, instead of installing unpinned somewhere else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Python 3.11 on linux: the platform `make lock` resolves for
ENV = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux"}


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {
        canonicalize_name(m[1]): m[2]
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", text, re.M)
    }


def unmet(requirements: list[str], pinned: dict[str, str]) -> list[str]:
    missing = []
    for line in requirements:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(ENV):
            continue
        version = pinned.get(canonicalize_name(req.name))
        if version is None:
            missing.append(f"{req} (not pinned)")
        elif not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req} (pinned {version})")
    return missing


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("prod.txt", PROJECT["dependencies"]),
        ("dev.txt", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
    ],
    ids=["prod", "dev"],
)
def test_lock_pins_every_requirement_of_pyproject(lock, requirements):
    missing = unmet(requirements, pins(lock))
    assert not missing, (
        f"requirements/{lock} is older than pyproject.toml: run `make lock` and commit "
        f"requirements/*.txt. Unmet: {', '.join(missing)}"
    )


def test_a_requirement_the_lock_lacks_is_reported():
    pinned = {"django": "5.2.19"}
    assert unmet(["Django>=5.2,<5.3", "django-filter>=24"], pinned) == [
        "django-filter>=24 (not pinned)"
    ]
    assert unmet(["Django>=6"], pinned) == ["Django>=6 (pinned 5.2.19)"]
