"""``ssald label --server HOST:PORT --label dual_nucleus``: label the objects the server asks about, at a terminal.

Each round asks the server for the next batch (``NextToLabel``), writes every stamp as a PNG in
``--out-dir`` and prints its path with the object's key metadata, then asks ``y / n / skip / quit`` for
each. After the batch the answers are submitted (``y`` stores the label, ``n`` stores ``not_<label>``)
with ``retrain``, and the classifier's cross-validated metrics are printed. It goes on until ``quit``,
end of input or Ctrl-C; answers already given in the batch are submitted first. Skipped objects are
not asked about again in the session.

Module import pulls in argparse only; the gRPC client is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from clients.client import SsaldClient, SubmitResult, ToLabel

from clients.cli.args import add_label, add_server, add_timeout, connect

__all__ = ["ANSWERS", "DESCRIPTION", "HELP", "add_arguments", "describe", "label_session", "negative_of", "run_label"]

HELP = "label the objects the server asks about (active learning at a terminal)"
DESCRIPTION = (
    "Ask the server which objects to label next, write their stamps as PNGs, ask y/n/skip/quit "
    "for each, submit the answers and retrain the classifier after each batch."
)

# What a person may type, and what it means.
ANSWERS = {"y": "yes", "yes": "yes", "n": "no", "no": "no", "s": "skip", "skip": "skip", "q": "quit", "quit": "quit"}


def negative_of(label: str) -> str:
    """The label stored for a "no" answer (the server's convention, ``ssald_index.active.labels.negative_of``)."""
    return f"not_{label}"


def _fmt(value: object, spec: str = "") -> str:
    return "-" if value is None or value == "" else format(value, spec)


def describe(item: ToLabel) -> str:
    """One line of key metadata about an object to label."""
    parts = [
        f"objid {item.objid}",
        f"ra={_fmt(item.ra, '.5f')}",
        f"dec={_fmt(item.dec, '+.5f')}",
        f"z={_fmt(item.z, '.4f')}",
        f"mag_r={_fmt(item.mag_r, '.2f')}",
        f"spec_class={_fmt(item.spec_class)}",
        f"bpt_class={_fmt(item.bpt_class)}",
        f"reason={item.reason}",
    ]
    if item.probability is not None:
        parts.append(f"p={item.probability:.3f}")
    if item.similarity is not None:
        parts.append(f"similarity={item.similarity:.3f}")
    return "  ".join(parts)


def _ask(question: str, read: Callable[[], str], out: TextIO) -> str:
    """The answer to ``question`` (``yes``, ``no``, ``skip`` or ``quit``); end of input is ``quit``."""
    while True:
        print(question, end="", file=out, flush=True)
        try:
            line = read()
        except EOFError:
            print(file=out)
            return "quit"
        if not line:  # readline() returns "" only at end of input
            print(file=out)
            return "quit"
        answer = ANSWERS.get(line.strip().lower())
        if answer:
            return answer
        print("  please answer y, n, skip or quit", file=out)


def _report(result: SubmitResult, label: str, out: TextIO) -> None:
    counts = result.label_counts
    print(
        f"saved {result.n_written} label(s) (labels version {result.labels_version}): "
        f"{counts.get(label, 0)} {label}, {counts.get(negative_of(label), 0)} {negative_of(label)}",
        file=out,
    )
    for retrained in result.retrained:
        run = retrained.run
        if run is None:
            print(f"classifier for {retrained.label} not retrained: {retrained.skipped}", file=out)
            continue
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(run.metrics.items())) or "no CV metrics yet"
        print(
            f"classifier {run.classifier} for {run.label}: {run.n_positive} positive, {run.n_negative} negative; "
            f"{metrics}",
            file=out,
        )


def label_session(
    client: SsaldClient,
    label: str,
    out_dir: Path,
    n: int = 10,
    strategy: str = "",
    user: str = "",
    seed_objid: int | None = None,
    classifier: str = "",
    read: Callable[[], str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the labelling loop until the person quits, input ends, or nothing is left to label.

    Parameters
    ----------
    client : SsaldClient
    label : str
        Target label; "y" stores it, "n" stores ``not_<label>``.
    out_dir : Path
        Where the stamps are written, as ``<objid>.png``.
    n, strategy, seed_objid, classifier
        As for :meth:`SsaldClient.next_to_label`.
    user : str
        Recorded with every label.
    read : callable, optional
        Returns one line of input (default ``sys.stdin.readline``).
    out : text stream, optional
        Where questions and reports go (default stdout).

    Returns
    -------
    int
        Number of labels submitted.
    """
    from clients.errors import InvalidArgument, NotFound

    read = read or sys.stdin.readline
    out = out or sys.stdout
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped: list[int] = []
    given = 0
    done = False
    while not done:
        batch = client.next_to_label(
            label, n=n, strategy=strategy, seed_objid=seed_objid, classifier=classifier, exclude_objids=skipped
        )
        if not batch.items:
            print(f"nothing left to label for {label}", file=out)
            break
        print(
            f"\n{len(batch)} object(s) chosen by {batch.strategy}; so far {batch.n_positive} {label}, "
            f"{batch.n_negative} other",
            file=out,
        )
        answers: list[tuple[int, str]] = []
        try:
            for i, item in enumerate(batch, start=1):
                print(f"[{i}/{len(batch)}] {describe(item)}", file=out)
                try:
                    path = out_dir / f"{item.objid}.png"
                    path.write_bytes(client.stamp_png(item.objid))
                    print(f"  stamp: {path}", file=out)
                except (NotFound, InvalidArgument) as exc:
                    print(f"  no stamp: {exc}", file=out)
                answer = _ask(f"  is it {label}? [y/n/skip/quit] ", read, out)
                if answer == "quit":
                    done = True
                    break
                if answer == "skip":
                    skipped.append(item.objid)
                else:
                    answers.append((item.objid, label if answer == "yes" else negative_of(label)))
        except KeyboardInterrupt:
            print("\ninterrupted: saving the answers given", file=out)
            done = True
        if answers:
            result = client.submit_labels(answers, retrain=True, classifier=classifier, user=user)
            given += result.n_written
            _report(result, label, out)
    print(f"{given} label(s) given this session; stamps in {out_dir}", file=out)
    return given


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald label``; it runs :func:`run_label`."""
    add_server(parser, "HOST:PORT of a running `ssald serve`", metavar=None)
    add_label(parser, "the label to find, e.g. dual_nucleus", default=None, required=True)
    parser.add_argument("--n", type=int, default=10, help="objects per batch (default: %(default)s)")
    parser.add_argument("--strategy", default="", help="active-learning strategy (default: the server's, gp_ei)")
    parser.add_argument("--seed-objid", type=int, default=None, help="a known example to start from")
    parser.add_argument("--classifier", default="", help="logistic (default) or forest")
    parser.add_argument("--user", default="", help="your name, stored with every label (default: login name)")
    parser.add_argument(
        "--out-dir", type=Path, default=Path("label_stamps"), help="where stamps go (default: %(default)s)"
    )
    add_timeout(parser, 120.0, "seconds per RPC, retraining included")
    parser.set_defaults(func=run_label)


def run_label(args: argparse.Namespace) -> int:
    """Handler of ``ssald label``."""
    import getpass

    user = args.user or getpass.getuser()
    with connect(args) as client:
        label_session(
            client,
            args.label,
            args.out_dir,
            n=args.n,
            strategy=args.strategy,
            user=user,
            seed_objid=args.seed_objid,
            classifier=args.classifier,
        )
    return 0
