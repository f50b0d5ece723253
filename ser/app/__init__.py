"""What people run: the per-file ``analysis``, the ``Predictor`` (``predict``), answer ``rows`` and
their formats, the command line (``cli``) and ``evaluate``, the local web page (``serve`` and
``web/``) and the ``timeline`` plot. The top layer: nothing imports it but ``ser.__main__``.
"""
