"""The SSALD gRPC server: thin servicers over :mod:`ssald_index` and the app that runs them.

- :mod:`server.service`: the ``ssald.v1.Ssald`` servicer over ``ssald_index.store.ObjectStore``;
- :mod:`server.al_service`: its active-learning RPCs over :mod:`ssald_index.active.session`;
- :mod:`server.convert`: messages ↔ Python, exceptions → status codes;
- :mod:`server.handle`: the served table, opened lazily and following new versions;
- :mod:`server.options`: ``ServerOptions``, with ``Security`` (tokens, TLS) and ``Limits`` (concurrency, sizes);
- :mod:`server.auth`: the bearer-token interceptor;
- :mod:`server.app`: ``create_server`` (build, not started) and ``serve`` (run until SIGINT/SIGTERM);
- :mod:`server.wire`: the servicer's registration, undecodable requests answered ``INVALID_ARGUMENT``;
- :mod:`server.metrics`: per-RPC counts, status codes and latencies for Prometheus;
- :mod:`server.log_limits`: rate limits on the server's log;
- :mod:`server.signals`: waiting for SIGINT/SIGTERM (``ssald serve`` and ``ssald web``);
- :mod:`server.__main__`: ``python -m server serve``, the ``ssald serve`` command (:mod:`clients.cli.serve`) alone.

Imports proto, ssald_index and, only when a model is given, encoders' ONNX Runtime path; never torch.
"""
