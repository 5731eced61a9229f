"""VICReg training and ONNX export: everything in :mod:`encoders` that needs torch.

Nothing on the serving path (server, ssald_index, ingest, clients, the rest of encoders) imports this
package; only the ``ssald train`` / ``ssald export`` / ``ssald quality`` commands load it, inside their
handlers. Kept import-free on purpose.
"""
