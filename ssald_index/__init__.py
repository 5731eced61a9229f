"""The table: schemas, the ``objects`` store, its indexes, and search over it.

- :mod:`~ssald_index.schema`, :mod:`~ssald_index.registry`: table schemas; opening a database, small tables;
- :mod:`~ssald_index.store`: the ``objects`` table (connection, writes, lookups);
- :mod:`~ssald_index.search`: kNN and cone search; :mod:`~ssald_index.filters`: their SQL prefilters;
- :mod:`~ssald_index.maintenance`: indexes and scores after writes (:mod:`~ssald_index.ann`,
  :mod:`~ssald_index.density`);
- :mod:`~ssald_index.active`: active learning over the table.

Imports numpy, pyarrow, lancedb, scikit-learn, umap and astropy only; never torch.
"""
