"""From corpora on disk to the clips a model trains on: release-layout parsers (``corpora``) and
tables (``tables``), the ``manifest``, ``preparation`` (clean, balance, folds), ``augment`` and
``splits``. Imports ``core`` and ``audio``; never ``features`` (the same rank) or anything above.
"""
