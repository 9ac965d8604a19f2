"""The demo's generated admin login, kept so the login page can say how to log in.

`ensure_admin` generates the first admin's password when none is given and records the
username, the password and the password's stored hash in a private file under var/. The
login page shows the pair only while the account still has that exact hash: once the
password is changed (or the account removed) the hint disappears by itself, without a
password check (a PBKDF2 round) on every page view.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple


class DemoLogin(NamedTuple):
    username: str
    password: str
    password_hash: str


def demo_login_write(path: Path, login: DemoLogin) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with path.open("x") as handle:
        path.chmod(0o600)  # a password: nobody else's business
        json.dump(login._asdict(), handle)


def demo_login_read(path: Path) -> DemoLogin | None:
    """The recorded login, or None when there is none or the file is not ours."""
    try:
        data = json.loads(path.read_text())
        return DemoLogin(str(data["username"]), str(data["password"]), str(data["password_hash"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def demo_login_current(login: DemoLogin | None, stored_hashes: dict[str, str]) -> DemoLogin | None:
    """`login` if its account still has the generated password, else None.

    `stored_hashes` maps usernames to the password hash each account has now.
    """
    if login is None or stored_hashes.get(login.username) != login.password_hash:
        return None
    return login
