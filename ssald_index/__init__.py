"""Storage and query layer: table schemas, the objects table, kNN (DESIGN §3).

Imports numpy, pyarrow, lancedb (and later sklearn, umap, astropy) only; never torch.
"""
