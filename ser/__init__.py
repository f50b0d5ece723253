"""Speech emotion recognition on combined emotional speech corpora (EmoDSc-style).

Library code shared by the DVC stage scripts under ``stages/`` and the command line
(``python -m ser``), in packages by job whose imports go one way only (``tests/test_layers.py``):
``core`` < ``audio`` < ``data``, ``features`` < ``model`` < ``bundle`` < ``app``.
"""

__version__ = "0.1.0"
