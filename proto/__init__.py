"""The SSALD gRPC API: ``ssald.proto`` (package ``ssald.v1``) and its generated Python stubs.

Modules
-------
ssald_pb2, ssald_pb2_grpc
    Messages and service stubs generated from ``proto/ssald.proto``, the source of truth (committed with
    their ``.pyi``); import them as ``from proto import ssald_pb2``.
regenerate
    ``python -m proto.regenerate``: rewrite the stubs after editing the ``.proto``.

The one command that generates the stubs, run from the repository root::

    python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. proto/ssald.proto

``tests/proto/test_stubs.py`` fails when the committed stubs are stale.
"""

__all__: list[str] = []
