"""The shared argument helpers: choice lists mirror the library's (copied so that ``ssald --help`` stays light)."""

from __future__ import annotations

from clients.cli import args, build_parser


def _choices(dest: str) -> dict[str, tuple]:
    """``{command: choices}`` of every subcommand (and ``al`` action) with an argument stored in ``dest``."""
    found = {}
    stack = [("ssald", build_parser())]
    while stack:
        name, parser = stack.pop()
        for action in parser._actions:
            if action.dest == dest and action.choices is not None:
                found[name] = tuple(action.choices)
            elif isinstance(action.choices, dict):
                stack += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    return found


def test_choices_are_the_librarys() -> None:
    from encoders.fit import FIT_MODES
    from ssald_index.active.classify import CLASSIFIERS, FEATURES

    assert (args.FIT_MODES, args.FEATURES, args.CLASSIFIERS) == (FIT_MODES, FEATURES, CLASSIFIERS)
    assert _choices("fit") == {"ssald train": FIT_MODES, "ssald ingest": FIT_MODES}
    assert _choices("al_features") == {"ssald serve": FEATURES}
    assert _choices("features") == {"ssald al simulate": FEATURES}
    assert _choices("classifier") == {"ssald al simulate": CLASSIFIERS, "ssald candidates": CLASSIFIERS}
