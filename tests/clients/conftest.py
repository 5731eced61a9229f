from __future__ import annotations

import pytest

from tests.server.helpers import running_server, write_db


@pytest.fixture(scope="package")
def db(tmp_path_factory):
    """(db_path, rows) of a real 50-object LanceDB table."""
    path = tmp_path_factory.mktemp("db") / "ssald.lance"
    return path, write_db(path)


@pytest.fixture(scope="package")
def address(db):
    with running_server(db[0]) as addr:
        yield addr
