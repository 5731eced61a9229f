"""SSALD Python client: similarity search over a running ``ssald serve``.

>>> from clients import SsaldClient                          # doctest: +SKIP
>>> with SsaldClient("127.0.0.1:50051") as client:
...     neighbours = client.find_similar(objid, k=10)
...     batch = client.next_to_label("dual_nucleus", n=10)
...     client.submit_labels([(batch.items[0].objid, "dual_nucleus")], retrain=True)

Modules
-------
client
    :class:`~clients.client.SsaldClient`: one method per RPC, each with a timeout.
labelling
    The active-learning calls of the client and the objects they return.
multi
    The batch (many objids and positions, streamed) and multi-example ("more like these") calls.
objects
    Plain Python objects returned by the client (objects, neighbours, candidates).
conversions
    Conversions between those objects and the protobuf messages.
errors
    Typed exceptions, one per gRPC status the service returns.
tables
    Write results to Parquet, CSV, FITS or VOTable.
web
    The ``ssald web`` HTTP app (JSON and table files, IVOA cone search, SAMP) over the client.
cli
    The ``ssald`` command line, one module per subcommand group (library modules never import it).

The library modules import only the generated ``proto`` stubs and ``grpc``: never the server, storage or
encoder packages.
"""

from clients.client import (
    BatchResult,
    Candidate,
    CandidateList,
    GalaxyObject,
    LabelBatch,
    Neighbour,
    ScoreRun,
    SsaldClient,
    SubmitResult,
    ToLabel,
)
from clients.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SsaldError,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "SsaldClient",
    "GalaxyObject",
    "Neighbour",
    "BatchResult",
    "ToLabel",
    "LabelBatch",
    "SubmitResult",
    "ScoreRun",
    "Candidate",
    "CandidateList",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "SsaldError",
    "Unauthenticated",
    "Unavailable",
]
