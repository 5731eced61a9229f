"""The table: schemas, the ``objects`` store, its indexes, and search over it.

- :mod:`~ssald_index.schema`: the Arrow schema of every table, declared once;
- :mod:`~ssald_index.registry`: opening a database; the small ``quarantine`` and ``models`` tables;
- :mod:`~ssald_index.errors`: the storage exceptions (``ObjectNotFound``, ``TableNotReady``);
- :mod:`~ssald_index.store`: ``ObjectStore``, the handle on the ``objects`` table (writes, lookups);
- :mod:`~ssald_index.filters`: metadata prefilters and cone boxes as SQL;
- :mod:`~ssald_index.search`: kNN by cosine distance, cone search, ``k`` validation;
- :mod:`~ssald_index.cache`: the server's in-memory copy of the metadata (and embeddings);
- :mod:`~ssald_index.ann`: the IVF_RQ vector index and the scalar indexes;
- :mod:`~ssald_index.density`: anomaly (low-density) scores stored in ``density_score``;
- :mod:`~ssald_index.maintenance`: indexes and scores brought up to date after writes;
- :mod:`~ssald_index.maps`: clusters and 2-D maps of the embedding space;
- :mod:`~ssald_index.feature_space`: search spaces that add the morphology to the embedding;
- :mod:`~ssald_index.metric`: metrics learned from labels; :mod:`~ssald_index.metric_search`: exact kNN in such spaces;
- :mod:`~ssald_index.tables`: Parquet, CSV, FITS and VOTable writers;
- :mod:`~ssald_index.active`: active learning over the table.

Imports numpy, pyarrow, lancedb, scikit-learn, umap and astropy only; never torch.
"""
