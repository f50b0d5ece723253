"""The foundation every other package uses, and nothing of theirs: one-line errors and signals
(``errors``), atomic writers and readers (``files``), ``pmap`` over local processes or Dask
(``parallel``), the validation declarations (``schema``) and params.yaml (``config``), ONNX
files and sessions (``onnx``), and matplotlib set up for files (``plots``).
"""
