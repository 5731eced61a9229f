"""The map call of :class:`clients.client.SsaldClient`: the stored 2-D map of the whole table, as arrays.

``map_points`` streams the ``map_x``/``map_y`` columns of every object with one value each to colour them
by (a number, or a code into category names); a million objects come back as about 20 MB of packed
little-endian arrays in chunks, so the client reads them straight into NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from clients.conversions import make_request
from clients.errors import Unavailable, from_rpc_error
from proto import ssald_pb2

if TYPE_CHECKING:  # numpy loads with the first call: `ssald --help` imports this module
    import numpy as np

__all__ = ["MapCalls", "MapPoints"]


@dataclass
class MapPoints:
    """The stored map of every object that has one, in objid order.

    Attributes
    ----------
    objids : ndarray of int64
    x, y : ndarray of float32
        ``map_x``, ``map_y``.
    values : ndarray of float32
        The colour of each object: the number, or the index into ``categories``; NaN where it has none.
    categories : list of str
        The names of the codes for a categorical ``color_by``; empty for a number.
    """

    objids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    categories: list[str]

    def __len__(self) -> int:
        return len(self.objids)


class MapCalls:
    """The map RPC; mixed into :class:`clients.client.SsaldClient`, which provides ``_stub`` and ``timeout``."""

    _stub: Any
    timeout: float

    def map_points(self, color_by: str = "cluster", label: str = "", timeout: float | None = None) -> MapPoints:
        """The 2-D map (``ssald_index.maps``) of every object, with a value to colour each by.

        Parameters
        ----------
        color_by : str
            ``cluster``, ``density_score``, ``spec_class``, ``bpt_class``, ``truth_class`` (codes into
            :attr:`MapPoints.categories`), ``label`` (latest label for ``label``: codes of ``label``,
            ``not_label``, ``other``; unlabelled NaN) or ``score`` (the classifier score of ``label``).
        label : str
            For ``label`` and ``score``.
        timeout : float, optional
            Seconds for the whole stream; ``None``: the client's timeout.

        Raises
        ------
        InvalidArgument
            Unknown ``color_by``, or ``label``/``score`` without a label.
        FailedPrecondition
            ``score`` for a label without a trained classifier.
        """
        import numpy as np

        request = make_request(ssald_pb2.MapPointsRequest, color_by=color_by, label=label)
        parts: dict[str, list[np.ndarray]] = {"objids": [], "x": [], "y": [], "values": []}
        dtypes = {"objids": "<i8", "x": "<f4", "y": "<f4", "values": "<f4"}
        categories: list[str] = []
        try:
            for chunk in self._stub.MapPoints(request, timeout=self.timeout if timeout is None else timeout):
                for name, dtype in dtypes.items():
                    parts[name].append(np.frombuffer(getattr(chunk, name), dtype=dtype))
                categories = list(chunk.categories)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        except ValueError as exc:  # grpc's answer on a closed channel
            raise Unavailable(f"{self!r} is closed: {exc}", "UNAVAILABLE") from None
        arrays = {
            name: np.concatenate(parts[name]).astype(dtype[1:]) if parts[name] else np.empty(0, dtype[1:])
            for name, dtype in dtypes.items()
        }
        return MapPoints(arrays["objids"], arrays["x"], arrays["y"], arrays["values"], categories)
