"""``ssald label``: a person answering at a terminal (stdin piped) against a real server and table."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from clients import SsaldClient
from clients.cli.label import label_session
from ssald_index.active.labels import read_labels
from tests.server.helpers import make_rows, running_server, write_db

LABEL = "dual_nucleus"


@pytest.fixture()
def served(tmp_path):
    """(db_path, rows, address) over a fresh table whose first 20 objects have real stamp files."""
    rows = make_rows()
    rng = np.random.default_rng(1)
    for row in rows[:20]:
        path = tmp_path / "stamps" / f"{row['objid']}.npy"
        path.parent.mkdir(exist_ok=True)
        np.save(path, rng.normal(1.0, 0.3, size=(5, 32, 32)).astype(np.float32))
        row["source"] = str(path)
    db_path = tmp_path / "ssald.lance"
    write_db(db_path, rows)
    with running_server(db_path, refresh_s=0) as address:
        yield db_path, rows, address


def _neighbour_order(rows, seed: int) -> list[int]:
    x = np.array([r["embedding"] for r in rows], dtype=np.float64)
    return [rows[j]["objid"] for j in np.argsort(-(x @ x[seed]), kind="stable")]


def test_label_command_with_piped_answers(served, tmp_path):
    db_path, rows, address = served
    order = _neighbour_order(rows, 3)
    out_dir = tmp_path / "pngs"
    answers = "y\nn\nskip\nmaybe\nN\nquit\n"
    command = [sys.executable, "-m", "clients.cli", "label", "--server", address, "--label", LABEL]
    command += ["--n", "3", "--seed-objid", str(rows[3]["objid"]), "--user", "ann", "--out-dir", str(out_dir)]
    done = subprocess.run(command, input=answers, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # Batch 1: the seed and its two nearest neighbours, answered y, n, skip; then saved and retrained.
    assert "3 object(s) chosen by cold_start:example" in out
    assert f"[1/3] objid {order[0]}" in out and f"[3/3] objid {order[2]}" in out
    assert f"saved 2 label(s) (labels version 1): 1 {LABEL}, 1 not_{LABEL}" in out
    assert f"classifier logistic for {LABEL}: 1 positive, 1 negative; no CV metrics yet" in out
    # Batch 2 comes from the classifier's strategy and never re-asks the skipped object.
    assert "chosen by gp_ei; so far 1 dual_nucleus, 1 other" in out
    second = out.split("chosen by gp_ei")[1]
    assert f"objid {order[2]}" not in second
    assert "please answer y, n, skip or quit" in second
    assert "saved 1 label(s)" in second and "3 label(s) given this session" in out
    labels = read_labels(db_path).to_pylist()
    assert [(r["objid"], r["label"], r["user"]) for r in labels[:2]] == [
        (order[0], LABEL, "ann"),
        (order[1], f"not_{LABEL}", "ann"),
    ]
    assert labels[2]["label"] == f"not_{LABEL}" and labels[2]["objid"] not in order[:3]
    # Every object asked about has its PNG (objects 0-19 have stamp files), named in the output.
    asked = [int(line.split("objid ")[1].split()[0]) for line in out.splitlines() if line.startswith("[")]
    with_stamps = {r["objid"] for r in rows[:20]}
    for objid in asked:
        png = out_dir / f"{objid}.png"
        assert (png.read_bytes().startswith(b"\x89PNG") and f"stamp: {png}" in out) == (objid in with_stamps)


def test_end_of_input_saves_the_answers_given(served, tmp_path):
    db_path, rows, address = served
    order = _neighbour_order(rows, 25)
    out = io.StringIO()
    read = io.StringIO("yes\nno\n").readline
    with SsaldClient(address, timeout=60) as client:
        given = label_session(
            client, LABEL, tmp_path / "pngs", n=4, seed_objid=rows[25]["objid"], user="bob", read=read, out=out
        )
    assert given == 2
    labels = read_labels(db_path).to_pylist()
    assert [(r["objid"], r["label"], r["user"]) for r in labels] == [
        (order[0], LABEL, "bob"),
        (order[1], f"not_{LABEL}", "bob"),
    ]
    text = out.getvalue()
    # Object 25 has no stamp file: the tool says so and still asks.
    assert f"no stamp: stamp file '{rows[25]['objid']}.fits' of objid {rows[25]['objid']} is missing" in text
    assert "2 label(s) given this session" in text


def test_unreachable_server_is_one_line(tmp_path):
    command = [sys.executable, "-m", "clients.cli", "label", "--server", "127.0.0.1:1", "--label", LABEL]
    done = subprocess.run(command + ["--timeout", "2"], input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("ssald label: error:")
