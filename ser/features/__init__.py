"""The model's inputs, from a cleaned clip: librosa-style features and log-mel images
(``handcrafted``), openSMILE eGeMAPS (``egemaps``), the frozen Whisper-base ``encoder`` and the
pooled states of every clip (``embedding``). Imports ``core`` and ``audio``; never ``data``.
"""
