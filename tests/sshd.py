"""A real OpenSSH server on 127.0.0.1 for the shared DVC remote tests.

:class:`Sshd` runs ``sshd -D -e -f <its own config>`` as the current user on a free port,
with a host key and one authorised client key generated for the test (``ssh-keygen``), so
no system configuration is read or changed. As root, sshd also needs its privilege
separation folder (``/run/sshd``), which the Debian package normally creates at boot.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"  # sshd must be started by its absolute path


def available() -> str | None:
    """Why no test sshd can run here, or None."""
    if not Path(SSHD).is_file():
        return "sshd is not installed (apt-get install openssh-server; .ci/run installs it)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    """A passphrase-less ed25519 key pair at ``path`` and ``path.pub``; return ``path``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


class Sshd:
    """sshd on 127.0.0.1:``port`` accepting ``client_key`` for the current user (``user``)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port = folder, free_port()
        self.user = os.environ.get("USER") or __import__("getpass").getuser()
        self.client_key = keygen(folder / "client_key")
        keygen(folder / "host_key")
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        config = folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {folder / 'host_key'}",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    f"PidFile {folder / 'sshd.pid'}",
                    "StrictModes no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.log = open(folder / "sshd.log", "w")  # noqa: SIM115  # closed by close()
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=self.log)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 15.0) -> None:
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError(f"sshd did not start: {(self.folder / 'sshd.log').read_text()[-2000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
