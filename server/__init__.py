"""The SSALD gRPC server (DESIGN §3, §5).

- :mod:`server.service`: the ``ssald.v1.Ssald`` servicer over ``ssald_index.store.ObjectStore``;
- :mod:`server.app`: ``create_server`` (build, not started) and ``serve`` (run until SIGINT/SIGTERM);
- :mod:`server.cli`: the ``ssald serve`` subcommand (``python -m server serve`` runs it alone).

Imports proto, ssald_index and, only when a model is given, encoders' ONNX Runtime path; never torch.
"""
