"""Active learning: labels, classifiers, stored scores, strategies, sessions, simulation and candidates.

Everything here works from Python without a server; :mod:`ssald_index.active.session` is the logic behind
the active-learning RPCs, and :mod:`server.al_service` only converts its answers to messages.
"""
