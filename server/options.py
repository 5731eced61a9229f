"""How an SSALD server runs: what it serves (:class:`ServerOptions`), who may call it (:class:`Security`) and
how much it accepts at once (:class:`Limits`), defaults in one place.

:func:`server.app.create_server` and :func:`server.app.serve` take one :class:`ServerOptions`;
``ssald serve`` builds it from its flags (:mod:`clients.cli.serve`).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the options load without LanceDB, so `ssald serve` refuses a bad bind at once
    from server.metrics import RpcMetrics
    from ssald_index.ann import SearchParams

__all__ = ["AUTH_SCOPES", "InsecureBind", "Limits", "Security", "ServerOptions", "is_loopback"]

#: What a configured token protects: ``"writes"`` (the write RPCs) or ``"all"`` (every SSALD RPC and
#: reflection; health checking stays open for orchestrators).
AUTH_SCOPES = ("writes", "all")

MiB = 2**20


class InsecureBind(ValueError):
    """A server would listen beyond loopback with its write RPCs open to anyone."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or ``localhost``, brackets allowed) is reachable only from this machine.

    Any other name, and the empty host (every interface), counts as reachable from outside.
    """
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_token(name: str, token: str | None) -> None:
    # The token travels as an HTTP/2 header value: printable ASCII without spaces, and never echoed here.
    if token is None:
        return
    if not token:
        raise ValueError(f"{name} is empty: give a secret of printable characters")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise ValueError(f"{name} holds spaces, control or non-ASCII characters: only printable ASCII is allowed")


@dataclass(frozen=True)
class Security:
    """Who may call the server, and over what.

    Parameters
    ----------
    token : str, optional
        The bearer token of full rights. When set, the write RPCs (:data:`server.auth.WRITE_METHODS`) always
        require it, on loopback too. Never printed: it is left out of ``repr``.
    read_token : str, optional
        A second token that grants the read RPCs only; a write with it is ``PERMISSION_DENIED``. Needs ``token``.
    auth : {"writes", "all"}
        What needs a token: the write RPCs, or every SSALD RPC and reflection (health checking stays open).
        ``"all"`` needs ``token``.
    insecure : bool
        Allow listening beyond loopback without a token (anyone who reaches the port can write labels).
    tls_cert, tls_key : path, optional
        PEM certificate chain and private key: serve TLS instead of plain text. Both or neither.
    tls_client_ca : path, optional
        PEM CA certificates: require every client to present a certificate they signed (mutual TLS).
        Needs ``tls_cert``.
    """

    token: str | None = field(default=None, repr=False)
    read_token: str | None = field(default=None, repr=False)
    auth: str = "writes"
    insecure: bool = False
    tls_cert: str | os.PathLike[str] | None = None
    tls_key: str | os.PathLike[str] | None = None
    tls_client_ca: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        _check_token("the token", self.token)
        _check_token("the read token", self.read_token)
        if self.auth not in AUTH_SCOPES:
            raise ValueError(f"auth must be one of {AUTH_SCOPES}, got {self.auth!r}")
        if self.read_token is not None and self.token is None:
            raise ValueError("a read token needs a (write) token too: without one, writes would be open to anyone")
        if self.read_token is not None and self.read_token == self.token:
            raise ValueError("the read token equals the token: give the read-only token a secret of its own")
        if self.auth == "all" and self.token is None:
            raise ValueError("auth 'all' requires a token (--token-file or SSALD_TOKEN): there is nothing to check")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and its private key (--tls-cert and --tls-key)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("client certificates (--tls-client-ca) need TLS: give --tls-cert and --tls-key")

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS."""
        return self.tls_cert is not None

    def check_bind(self, host: str) -> None:
        """Refuse to listen on ``host`` beyond loopback without a token, unless ``insecure``.

        Raises
        ------
        InsecureBind
            ``host`` is not a loopback address, no token is configured and ``insecure`` is false.
        """
        if self.token is None and not self.insecure and not is_loopback(host):
            raise InsecureBind(
                f"refusing to listen on {host or 'every interface'!r} without a token: anyone who reaches it could "
                "write labels. Give a token (--token-file PATH or the SSALD_TOKEN environment variable), bind "
                "127.0.0.1, or pass --insecure to accept an open server"
            )


@dataclass(frozen=True)
class Limits:
    """How much one server accepts: its answer when a limit is reached is ``RESOURCE_EXHAUSTED``.

    Parameters
    ----------
    max_concurrent_rpcs : int
        RPCs in flight (running or queued for a worker thread) at once; one more is refused at once with
        ``RESOURCE_EXHAUSTED`` instead of waiting in an unbounded queue.
    max_receive_bytes : int
        Largest request message; default 65 MiB, a 64 MiB stamp upload (``encoders.stamps.MAX_STAMP_BYTES``)
        and its other fields. gRPC's own default would be 4 MiB.
    max_send_bytes : int
        Largest response message (64 MiB).
    """

    max_concurrent_rpcs: int = 64
    max_receive_bytes: int = 65 * MiB
    max_send_bytes: int = 64 * MiB

    def __post_init__(self) -> None:
        for name in ("max_concurrent_rpcs", "max_receive_bytes", "max_send_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def channel_options(self) -> list[tuple[str, int]]:
        """The gRPC channel arguments that set the message size limits."""
        return [
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.max_send_message_length", self.max_send_bytes),
        ]


@dataclass(frozen=True)
class ServerOptions:
    """Everything about a server except its database and address.

    Parameters
    ----------
    model_path : path, optional
        ONNX encoder, loaded with ``encoders.embedder.OnnxEmbedder`` for the image RPCs; a warning is
        logged if its model_id differs from the table's.
    max_workers : int
        Threads serving RPCs concurrently.
    search_params : SearchParams, optional
        ANN query parameters (default :class:`ssald_index.ann.SearchParams`).
    refresh_s : float
        Seconds between checks for a newer table version (new ingests, scores); 0 serves one version.
    al_features : {"embedding", "morphology", "embedding+morphology"}
        What the active-learning classifiers see (:class:`ssald_index.active.session.ActiveLearning`).
    security : Security
        Tokens and TLS (default: none, on loopback only).
    limits : Limits
        Concurrency and message size limits.
    metrics : RpcMetrics, optional
        Where to count and time every RPC (:mod:`server.metrics`); none are recorded without it.
    read_only : bool
        Serve as a read-only replica (:mod:`server.replica`): RPCs that write (``SubmitLabels``) answer
        ``FAILED_PRECONDITION`` and nothing is ever written to the database.
    """

    model_path: str | os.PathLike[str] | None = None
    max_workers: int = 8
    search_params: SearchParams | None = None
    refresh_s: float = 10.0
    al_features: str = "embedding"
    security: Security = field(default_factory=Security)
    limits: Limits = field(default_factory=Limits)
    metrics: RpcMetrics | None = field(default=None, compare=False)
    read_only: bool = False
