"""Certificates for the loopback API server over HTTPS, made with the ``openssl`` command.

A CA (as a cluster's), a serving certificate for 127.0.0.1 signed by it, and a client
certificate (``CN`` the user name, ``O`` its group, as kube-apiserver reads them) that the
kubeconfig carries instead of a token.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self) -> ssl.SSLContext:
        """Serves with the CA's certificate; a client certificate is checked when one is sent
        (a token may authenticate instead, as on a real API server)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        context.load_cert_chain(self.server_cert, self.server_key)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(
    where: Path, user: str = "tester", group: str = "system:masters"
) -> Certificates:
    """A CA and the certificates it signs, in ``where``; needs ``openssl`` (scripts/system-deps)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not installed (scripts/system-deps installs it)")
    where.mkdir(parents=True, exist_ok=True)
    (where / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "authorityKeyIdentifier=keyid\n"
    )
    (where / "client.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n"
        "authorityKeyIdentifier=keyid\n"
    )
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=ktl-fake-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=where,
    )  # fmt: skip
    for name, subject in (("server", "/CN=kube-apiserver"), ("client", f"/O={group}/CN={user}")):
        _openssl("req", "-new", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=where)  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=where,
        )  # fmt: skip
    return Certificates(
        where / "ca.crt",
        where / "server.crt",
        where / "server.key",
        where / "client.crt",
        where / "client.key",
    )
