"""Tables of query results: 64-bit identifiers with nulls stay exact, empty results keep their columns,
and :func:`table_bytes` gives what :func:`write_objects` writes."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from clients.client import GalaxyObject, Neighbour
from clients.tables import FORMATS, objects_table, table_bytes, write_objects
from tests.server.helpers import make_rows


def _objects() -> list[Neighbour]:
    rows = make_rows(6)
    fields = {k for k in GalaxyObject.__dataclass_fields__ if k != "embedding"}
    return [Neighbour(**{k: v for k, v in r.items() if k in fields}, distance=0.1 * i) for i, r in enumerate(rows)]


@pytest.mark.parametrize("suffix", [".vot", ".fits", ".parquet", ".csv"])
def test_nullable_64_bit_ids_are_written_exactly(tmp_path, suffix):
    objects = _objects()
    assert objects[0].specobjid is None and objects[1].specobjid % 64  # a null, and ids a float64 would round
    path = write_objects(objects, tmp_path / f"t{suffix}")
    got = list(Table.read(path)["specobjid"])
    assert [None if v is np.ma.masked or v is None else int(v) for v in got] == [o.specobjid for o in objects]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_table_bytes_are_the_file_write_objects_writes(tmp_path, fmt):
    objects = _objects()
    suffix = FORMATS[fmt][0]
    written = write_objects(objects, tmp_path / f"t{suffix}")
    body = table_bytes(objects_table(objects), fmt)
    if fmt == "csv":
        assert body == written.read_bytes()
    else:
        source = io.BytesIO(body) if fmt != "parquet" else pq.read_table(io.BytesIO(body))
        back = Table.read(source, format=fmt) if fmt != "parquet" else Table(source.to_pydict())
        expected = Table.read(written) if fmt != "parquet" else Table(pq.read_table(written).to_pydict())
        assert back.pformat(max_width=-1) == expected.pformat(max_width=-1)


def test_an_empty_result_has_the_columns_of_its_class():
    table = objects_table([], Neighbour)
    assert len(table) == 0 and table.colnames[-1] == "distance" and "embedding" not in table.colnames
    assert table["objid"].dtype == np.int64 and table["z"].dtype == np.float64 and table["survey"].dtype.kind == "U"
    with pytest.raises(ValueError, match="unknown table format 'xls'"):
        table_bytes(table, "xls")
