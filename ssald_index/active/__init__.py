"""Active learning: labels, classifiers, stored scores, strategies, sessions, simulation and candidates.

- :mod:`~ssald_index.active.labels`: the append-only ``labels`` table;
- :mod:`~ssald_index.active.classify`: classifiers fitted on the labelled rows, scoring every object;
- :mod:`~ssald_index.active.scores`: stored per-label scores (``scores_<label>``) and their runs;
- :mod:`~ssald_index.active.strategies`: which unlabelled objects to show next;
- :mod:`~ssald_index.active.session`: ``ActiveLearning``, the logic behind the active-learning RPCs;
- :mod:`~ssald_index.active.learned`: learned-metric spaces, fitted on the labels of one class;
- :mod:`~ssald_index.active.simulate`: the loop run against a ground-truth oracle;
- :mod:`~ssald_index.active.candidates`: candidate lists, cross-matched and exported.

Everything here works from Python without a server; :mod:`server.al_service` only converts the session's
answers to messages.
"""
