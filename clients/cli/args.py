"""Arguments that several ``ssald`` subcommands share, each declared once.

Every helper adds one flag (or one group of flags) with its name, type and meaning fixed here; the help
text is a parameter where a command says more about what the flag means for it. Standard library only,
so that building the parser (``ssald --help``) loads nothing heavy.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from clients.client import SsaldClient

T = TypeVar("T")

log = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIERS",
    "FEATURES",
    "FIT_MODES",
    "add_classifier",
    "add_db",
    "add_exclude_radius",
    "add_features",
    "add_fit",
    "add_k",
    "add_label",
    "add_metadata_filters",
    "add_model",
    "add_no_progress",
    "add_out",
    "add_redshift_range",
    "add_seed",
    "add_server",
    "add_timeout",
    "add_token_file",
    "ask_server",
    "connect",
    "metadata_filters",
    "read_secret",
    "read_token",
    "write_out",
]

#: Ways to bring stamps to a model's size (:data:`encoders.fit.FIT_MODES`; not imported, it needs numpy).
FIT_MODES = ("none", "crop", "bin", "resample")
#: What an active-learning classifier sees (:data:`ssald_index.active.classify.FEATURES`; not imported).
FEATURES = ("embedding", "morphology", "embedding+morphology")
#: Active-learning classifiers (:mod:`ssald_index.active.classify`).
CLASSIFIERS = ("logistic", "forest")

#: An argument parser or one of its groups.
Arguments = argparse._ActionsContainer


def add_db(
    parser: Arguments, help: str = "LanceDB database directory", required: bool = True, as_path: bool = True
) -> None:
    """``--db DB``: the LanceDB database folder (a :class:`~pathlib.Path`, or the string as typed)."""
    parser.add_argument("--db", type=Path if as_path else None, required=required, help=help)


def add_model(parser: Arguments, help: str, required: bool = False, as_path: bool = True) -> None:
    """``--model MODEL``: an ONNX encoder written by ``ssald export``."""
    parser.add_argument("--model", type=Path if as_path else None, required=required, default=None, help=help)


def add_server(parser: Arguments, help: str = "address printed by `ssald serve`", metavar: str | None = "HOST:PORT"):
    """``--server HOST:PORT``: the address of a running ``ssald serve``, and how to reach it (:func:`connect`):
    ``--token-file``, ``--ca-file``, ``--client-cert`` and ``--client-key``."""
    parser.add_argument("--server", required=True, metavar=metavar, help=help)
    group = parser.add_argument_group("connection")
    add_token_file(group, "file holding the server's bearer token (default: $SSALD_TOKEN_FILE, else $SSALD_TOKEN)")
    group.add_argument("--ca-file", default=None, help="PEM CA certificate(s) of a TLS server: connect with TLS")
    group.add_argument("--client-cert", default=None, help="PEM client certificate, for a server that asks for one")
    group.add_argument("--client-key", default=None, help="PEM private key of --client-cert")


def add_token_file(parser: Arguments, help: str, flag: str = "--token-file") -> None:
    """``--token-file PATH``: a file holding a bearer token (read by :func:`read_token`; never a token on the
    command line, where every user of the machine could read it)."""
    parser.add_argument(flag, default=None, metavar="PATH", help=help)


def read_secret(path: str | os.PathLike[str] | None, env: str, what: str = "token") -> str | None:
    """A secret from the file ``path`` (surrounding whitespace removed), else from the environment variable
    ``env``; ``None`` when neither is given. The secret itself is never part of a message. A file that its
    group or other users may read or write is used, with a warning that names it and the fix (``chmod 600``).

    Raises
    ------
    OSError
        ``path`` cannot be read (the same subclass, with a message that names the file).
    ValueError
        ``path`` is not ASCII text.
    """
    if path is None:
        value = os.environ.get(env)
        return value.strip() if value and value.strip() else None
    try:
        secret = Path(path).read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise ValueError(f"the {what} file {os.fspath(path)!r} is not ASCII text") from None
    except OSError as exc:  # the same class (FileNotFoundError, PermissionError), so `ssald` prints one line
        raise type(exc)(f"cannot read the {what} file {os.fspath(path)!r}: {exc.strerror or exc}") from None
    _warn_if_open(path, what)
    return secret


def _warn_if_open(path: str | os.PathLike[str], what: str) -> None:
    """Log a warning when users other than the owner of the secret file may read or change it (as ssh does)."""
    if os.name == "nt":  # POSIX permission bits mean nothing there
        return
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "the %s file %s can be read or changed by its group or other users (mode %s): run `chmod 600 %s`",
            what,
            os.fspath(path),
            f"{mode:04o}",
            os.fspath(path),
        )


def read_token(args: argparse.Namespace) -> str | None:
    """The bearer token of ``--token-file``, else of the file named by ``$SSALD_TOKEN_FILE``, else ``$SSALD_TOKEN``."""
    return read_secret(args.token_file or os.environ.get("SSALD_TOKEN_FILE"), "SSALD_TOKEN")


def connect(args: argparse.Namespace) -> SsaldClient:
    """The client of ``--server`` with the flags of :func:`add_server` and ``--timeout``."""
    from clients.client import SsaldClient

    return SsaldClient(
        args.server,
        timeout=args.timeout,
        token=read_token(args),
        ca_file=args.ca_file,
        client_cert=args.client_cert,
        client_key=args.client_key,
    )


def add_timeout(parser: Arguments, default: float = 10.0, help: str = "seconds per RPC (default: %(default)s)"):
    """``--timeout SECONDS``: the deadline of each RPC."""
    parser.add_argument("--timeout", type=float, default=default, help=help)


def add_k(parser: Arguments, default: int = 10, help: str = "number of neighbours (default: %(default)s)") -> None:
    """``-k K``: how many neighbours."""
    parser.add_argument("-k", type=int, default=default, help=help)


def add_out(
    parser: Arguments, help: str, required: bool = False, default: Path | None = None, as_path: bool = True
) -> None:
    """``--out FILE``: where a command writes its result (a :class:`~pathlib.Path`, or the string as typed, which
    the messages that name it print unchanged)."""
    parser.add_argument("--out", type=Path if as_path else None, required=required, default=default, help=help)


def add_seed(parser: Arguments, default: int | None = 0, help: str | None = None) -> None:
    """``--seed SEED``: the random seed, so that a run can be repeated."""
    parser.add_argument("--seed", type=int, default=default, help=help)


def add_no_progress(parser: Arguments, help: str = "no progress bar") -> None:
    """``--no-progress``: hide progress bars (logs, batch jobs)."""
    parser.add_argument("--no-progress", action="store_true", help=help)


def add_exclude_radius(parser: Arguments, help: str) -> None:
    """``--exclude-radius ARCSEC``: leave out the objects this close to the query (its own other detections)."""
    parser.add_argument("--exclude-radius", type=float, default=0.0, help=help)


def add_fit(parser: Arguments, default: str | None, help: str, fraction_help: str) -> None:
    """``--fit MODE`` and ``--fit-fraction F``: how stamps are brought to a model's size."""
    parser.add_argument("--fit", choices=FIT_MODES, default=default, help=help)
    parser.add_argument("--fit-fraction", type=float, default=None, help=fraction_help)


def add_features(parser: Arguments, flag: str, help: str) -> None:
    """``flag`` (``--features``, ``--al-features``): what active-learning classifiers see."""
    parser.add_argument(flag, choices=FEATURES, default="embedding", help=help)


def add_classifier(parser: Arguments, default: str | None = "logistic", help: str | None = None) -> None:
    """``--classifier NAME``: the active-learning classifier."""
    parser.add_argument("--classifier", choices=CLASSIFIERS, default=default, help=help)


def add_label(parser: Arguments, help: str, default: str | None = "dual_nucleus", required: bool = False) -> None:
    """``--label LABEL``: the class an active-learning command looks for."""
    parser.add_argument("--label", default=default, required=required, help=help)


def add_redshift_range(group: Arguments) -> None:
    """``--z-min`` and ``--z-max``: a spectroscopic redshift range."""
    group.add_argument("--z-min", type=float, default=None, help="minimum spectroscopic redshift")
    group.add_argument("--z-max", type=float, default=None, help="maximum spectroscopic redshift")


def add_metadata_filters(parser: argparse.ArgumentParser) -> None:
    """The metadata prefilter of a server query (redshift, classes, SQL; read back by :func:`metadata_filters`)
    and ``--out``, where :func:`write_out` writes its result."""
    group = parser.add_argument_group("metadata prefilter")
    add_redshift_range(group)
    group.add_argument("--spec-class", action="append", default=[], help="accepted spec_class (repeatable)")
    group.add_argument("--bpt-class", action="append", default=[], help="accepted bpt_class (repeatable)")
    group.add_argument("--where", default=None, help='SQL over the objects columns, e.g. "mag_r < 17"')
    add_out(parser, "also write the result to .parquet/.csv/.fits/.vot", as_path=False)


def metadata_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the client's queries that :func:`add_metadata_filters`' flags give."""
    return {
        "z_min": args.z_min,
        "z_max": args.z_max,
        "spec_class": args.spec_class,
        "bpt_class": args.bpt_class,
        "where": args.where,
    }


def write_out(args: argparse.Namespace, objects: Sequence) -> int:
    """Write a server query's objects to ``--out`` when it is given (:mod:`clients.tables`); returns 0."""
    if args.out and objects:
        from clients.tables import write_objects

        write_objects(objects, args.out)
        print(f"wrote {len(objects)} rows to {args.out}")
    return 0


def ask_server(args: argparse.Namespace, command: str, ask: Callable[[SsaldClient], T]) -> T | None:
    """``ask(client)`` of the server at ``--server``, each RPC within ``--timeout`` seconds.

    A failed query (an error status, bad arguments, an unreachable server) prints one line,
    ``ssald COMMAND: CODE: message``, and returns ``None``: the command then exits 1.
    """
    from clients.errors import SsaldError

    try:
        with connect(args) as client:
            return ask(client)
    except (SsaldError, ValueError, OSError) as exc:
        message = str(exc).replace("\n", " ")
        print(f"ssald {command}: {getattr(exc, 'code', 'ERROR')}: {message}", file=sys.stderr)
        return None
