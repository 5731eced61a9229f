"""The SSALD gRPC API: ``ssald.proto`` (package ``ssald.v1``) and its generated Python stubs.

``proto/ssald.proto`` is the source of truth. The stubs ``ssald_pb2.py``, ``ssald_pb2.pyi`` and
``ssald_pb2_grpc.py`` are generated and committed; regenerate them with this one command, run from the
repository root::

    python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. proto/ssald.proto

(``python -m proto.regenerate`` runs exactly that). Import them as ``from proto import ssald_pb2``.
``tests/proto/test_stubs.py`` fails when the committed stubs are stale.
"""
