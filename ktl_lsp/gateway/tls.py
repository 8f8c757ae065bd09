"""Mutual TLS: the gateway requiring client certificates, and a client presenting one and
checking the gateway's, with every refusal said by its cause on both ends.

A refused handshake names its cause in a TLS alert (certificate required, certificate expired,
unknown CA); the client reads that alert to say which. The server logs the same cause.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: OpenSSL's verify results (``X509_V_ERR_*``) for a certificate whose issuer is not trusted.
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH = frozenset({62, 64})  # hostname, IP address


def _client_cause(exc: ssl.SSLError) -> str:
    """Why a client's certificate was refused, as the server's log says it."""
    if exc.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return "it sent no client certificate"
    code = getattr(exc, "verify_code", None)
    if code == _EXPIRED:
        return "its client certificate has expired"
    if code == _NOT_YET_VALID:
        return "its client certificate is not valid yet"
    if code in _UNTRUSTED:
        return "its client certificate is not signed by the --tls-client-ca CA"
    return f"its client certificate was not accepted ({getattr(exc, 'verify_message', None) or exc.reason})"


class _AlertingSSLObject(ssl.SSLObject):
    """Sends the alert of a refused client certificate before the connection closes.

    asyncio closes a server connection whose handshake failed without flushing what OpenSSL
    wrote, so the client saw only a reset and could not tell a missing certificate from an
    expired one. Reporting the failure once as "want read" makes asyncio send the pending
    bytes (the alert) first; the failure is raised when the client answers or hangs up.
    """

    _refused: ssl.SSLError | None = None

    def do_handshake(self) -> None:
        if self._refused is not None:
            raise self._refused
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            certificate = isinstance(exc, ssl.SSLCertVerificationError) or (
                exc.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
            )
            if not certificate:
                raise
            log.warning("refused a TLS client: %s", _client_cause(exc))
            self._refused = exc
            raise ssl.SSLWantReadError("alert pending") from exc


def require_client_certificates(context: ssl.SSLContext, ca_file: Path) -> None:
    """Makes a server ``context`` accept only clients whose certificate ``ca_file`` signed.

    Raises OSError or ssl.SSLError when ``ca_file`` is no readable PEM CA.
    """
    context.load_verify_locations(cafile=str(ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    context.sslobject_class = _AlertingSSLObject


class ClientTlsError(Exception):
    """The client's TLS settings cannot be used; the message names the setting."""


@dataclass(frozen=True)
class ClientTls:
    """How a client checks a gateway's certificate and proves itself with its own.

    Messages name the editor's settings (``agent.*``), through which a remote gateway is set.
    """

    ca_file: Path | None = None  #: trust only this CA (default: the system's, $SSL_CERT_FILE)
    cert_file: Path | None = None  #: the client certificate (PEM; may hold the key too)
    key_file: Path | None = None
    server_name: str | None = None  #: the name the server's certificate must have

    @property
    def configured(self) -> bool:
        return any((self.ca_file, self.cert_file, self.key_file, self.server_name))

    @property
    def extensions(self) -> dict[str, Any]:
        """httpx request extensions: ask for, and check the certificate against, server_name."""
        return {"sni_hostname": self.server_name} if self.server_name else {}

    def context(self) -> ssl.SSLContext:
        """The client context; ClientTlsError names a file that cannot be used."""
        if self.key_file and not self.cert_file:
            raise ClientTlsError("agent.keyFile is set without agent.certFile")
        if self.ca_file is not None:
            try:
                context = ssl.create_default_context(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ClientTlsError(f"cannot load agent.caFile ({self.ca_file}): {exc}") from exc
        else:
            import httpx  # its default trust: certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR

            context = httpx.create_ssl_context()
        if self.cert_file is not None:
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ClientTlsError(
                    f"cannot load agent.certFile ({self.cert_file})"
                    + (f" with agent.keyFile ({self.key_file})" if self.key_file else "")
                    + f": {exc}"
                ) from exc
        return context

    def refusal(self, exc: BaseException, host: str) -> str | None:
        """What a TLS failure in ``exc`` (or what caused it) means for these settings, when
        retrying cannot help; None for anything else."""
        cause = _ssl_cause(exc)
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            return self._server_refused(cause, host)
        reason = cause.reason or ""
        mine = f"the client certificate agent.certFile ({self.cert_file})"
        if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED" or (
            reason == "SSLV3_ALERT_HANDSHAKE_FAILURE" and self.cert_file is None
        ):
            return "the gateway requires a client certificate: set agent.certFile and agent.keyFile"
        if reason == "SSLV3_ALERT_CERTIFICATE_EXPIRED":
            return f"the gateway refused {mine}: it has expired"
        if reason == "TLSV1_ALERT_UNKNOWN_CA":
            return f"the gateway refused {mine}: it is not signed by a CA the gateway trusts"
        if "ALERT" in reason and "CERTIFICATE" in reason:  # bad, unsupported, revoked, ...
            return f"the gateway refused {mine}: {reason.lower().replace('_', ' ')}"
        if reason == "WRONG_VERSION_NUMBER":
            return "the server does not speak TLS (is https in agent.url right?)"
        return None

    def _server_refused(self, exc: ssl.SSLCertVerificationError, host: str) -> str:
        code = exc.verify_code
        if code in _NAME_MISMATCH:
            if self.server_name:
                return f"the server certificate is not for {self.server_name} (agent.serverName)"
            return (
                f"the server certificate is not for {host}, the host in agent.url "
                "(agent.serverName sets the name to expect)"
            )
        if code == _EXPIRED:
            return "the server certificate has expired"
        if code == _NOT_YET_VALID:
            return "the server certificate is not valid yet"
        if code in _UNTRUSTED:
            if self.ca_file is not None:
                return f"the server certificate is not signed by agent.caFile ({self.ca_file})"
            return (
                "the server certificate is not signed by a CA this machine trusts "
                "(agent.caFile sets the CA to trust)"
            )
        return f"the server certificate was not accepted: {exc.verify_message}"


def _ssl_cause(exc: BaseException | None) -> ssl.SSLError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError) and not isinstance(
            exc, (ssl.SSLWantReadError, ssl.SSLWantWriteError)
        ):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
