"""What a trained model is: the bundle's ``format`` (the frozen ``Bundle`` and its schema), its
``export`` (``model.onnx``, ``model.keras`` via ``keras_file``, the cut encoder) and the
``runtime`` that runs it after checking every fingerprint. Imports the packages below it.
"""
