"""A throwaway Dovecot on 127.0.0.1 for the tests that play the simulated dialogues
against a real IMAP/POP3 server (Debian's dovecot-imapd and dovecot-pop3d).

Everything lives in one temporary folder: the configuration, a passwd-file with the
test users, their maildirs (owned by ``nobody``: Dovecot refuses root for mail), a
certificate for STLS/STARTTLS made by trustme, the sockets and the log. Dovecot runs in
the foreground and is stopped when the fixture ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
GREETING = "Dovecot ready."  # the simulated servers' greeting, set as Dovecot's own

CONFIG = """\
protocols = pop3 imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
login_greeting = {greeting}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
# Dovecot's default: no password before TLS, but for a client on its own address
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
  }}
}}
"""


@dataclass
class Dovecot:
    root: Path
    pop3: int
    imap: int
    ca: object  # trustme.CA: clients trust it for STLS/STARTTLS
    imaps: int = 0  # IMAP over implicit TLS (RFC 8314), as on port 993

    def deliver(self, user: str, messages: list[bytes]) -> None:
        """Put ``messages`` in ``user``'s maildir, as an MDA would (new/, one file each)."""
        new = self.root / "home" / user / "Maildir" / "new"
        for k, text in enumerate(messages):
            path = new / f"{time.time_ns()}.M{k}P{os.getpid()}.test"
            path.write_bytes(text)
            _give_to_nobody(path)

    def client_context(self):
        import ssl

        context = ssl.create_default_context()
        self.ca.configure_trust(context)  # type: ignore[attr-defined]
        return context


def require() -> str:
    """Dovecot's path; in CI a missing Dovecot fails the run, elsewhere the test skips."""
    if DOVECOT is None:
        why = ("needs Dovecot from the distribution: apt-get install dovecot-imapd"
               " dovecot-pop3d (make test does, as root)")  # fmt: skip
        if os.environ.get("CI"):
            raise RuntimeError(why)
        pytest.skip(why)
    return DOVECOT


@contextlib.contextmanager
def running(users: dict[str, str]) -> Iterator[Dovecot]:
    """Dovecot serving ``users`` (address → password) from a fresh folder (readable by
    Dovecot's own users, unlike pytest's private temporary folders), removed afterwards."""
    binary = require()
    root = Path(tempfile.mkdtemp(prefix="mailsim-dovecot-"))
    root.chmod(0o755)
    try:
        with _serving(binary, root, users) as served:
            yield served
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _serving(binary: str, root: Path, users: dict[str, str]) -> Iterator[Dovecot]:
    import trustme

    nobody = pwd.getpwnam("nobody")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
    cert.private_key_pem.write_to_path(str(root / "key.pem"))
    for sub in ("run", "state"):
        (root / sub).mkdir()
    (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in users.items()))
    for user in users:
        for part in ("new", "cur", "tmp"):
            (root / "home" / user / "Maildir" / part).mkdir(parents=True)
    for path in (root / "home").rglob("*"):
        _give_to_nobody(path)
    _give_to_nobody(root / "home")
    process, (pop3, imap, imaps) = _started(binary, root, nobody)
    try:
        yield Dovecot(root, pop3, imap, ca, imaps)
    finally:
        _stop(process)


def _started(
    binary: str, root: Path, nobody: pwd.struct_passwd
) -> tuple[subprocess.Popen[bytes], tuple[int, int, int]]:
    """Dovecot listening on three ports found free. Another process can take one before
    Dovecot binds it ("Address already in use"): then it starts again on three others,
    three times in all."""

    def start() -> tuple[subprocess.Popen[bytes], tuple[int, int, int]]:
        pop3, imap, imaps = ports = free_port(), free_port(), free_port()
        config = root / "dovecot.conf"
        config.write_text(CONFIG.format(root=root, greeting=GREETING, uid=nobody.pw_uid,
                                        gid=nobody.pw_gid, pop3=pop3, imap=imap,
                                        imaps=imaps))  # fmt: skip
        (root / "dovecot.log").unlink(missing_ok=True)
        process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        try:
            for port in ports:
                _wait_for(port, process, root)
        except RuntimeError:
            _stop(process)
            raise
        return process, ports

    for _ in range(2):
        try:
            return start()
        except RuntimeError as failed:
            if "already in use" not in str(failed):
                raise
    return start()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _give_to_nobody(path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    with contextlib.suppress(PermissionError):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


def _wait_for(port: int, process: subprocess.Popen[bytes], root: Path) -> None:
    for _ in range(100):
        if process.poll() is not None:
            out = process.stdout.read().decode() if process.stdout else ""
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(f"Dovecot did not start: {out}{log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"Dovecot did not listen on 127.0.0.1:{port} within 10 s")
