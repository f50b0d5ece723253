"""Learning and measuring: the Keras ``network`` and the linear probe, ``training`` (folds, LOCO,
the shipped model), speaker ``normalize``, ``calibration``, ``evaluation``, the baseline ``svm``
and the ``training_data`` the stages read. Imports ``core``, ``audio`` and ``features``.
"""
