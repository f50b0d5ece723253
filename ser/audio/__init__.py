"""Audio as signals, whatever a file's format: ``decode`` (and the ``headers`` check of what a file
holds), the one ``cleaning`` rule of training and prediction, augmentation ``effects``, PCM
``pack``s, librosa-equivalent ``dsp`` and the Silero ``speech`` detector. Imports only ``core``.
"""
