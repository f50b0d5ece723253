"""Speech emotion recognition on combined emotional speech corpora (EmoDSc-style).

Library code shared by the DVC stage scripts under ``stages/`` and the command line
(``python -m ser``): corpus parsers, audio operations, splitting, features, model, metrics.
"""

__version__ = "0.1.0"
