"""Ingestion: stamps and a catalogue in, rows of embeddings in the ``objects`` table out.

Modules
-------
sources
    Where stamps come from: one module per input kind behind one protocol (discovery and loading).
synthetic
    The synthetic survey with ground truth (stamps, catalogue, SDSS-like identifiers).
catalogue
    Read object catalogues and map their columns onto the ``objects`` schema.
options
    :class:`~ingest.options.IngestInput` and :class:`~ingest.options.IngestOptions`: what a run reads and how.
pipeline
    The stages both engines share: load, validate, normalise, measure; Arrow rows; the prefetcher.
bookkeeping
    Which objids a run embeds, skips or quarantines; what it counted; the per-database ingest lock.
job
    :func:`~ingest.job.ingest`, the bulk embed job and its local engine.
ray_engine
    The same stages as a Ray Data pipeline (``--engine ray``).
quality
    Read stored embeddings (and labels) back for label-free quality scores.

The package imports nothing itself.
"""

__all__: list[str] = []
