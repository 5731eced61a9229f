"""Stamps to normalised cubes to embeddings: the encoder side of the data flow.

Modules
-------
stamps
    Read stamp files (one reader per format) into :class:`~encoders.stamps.Stamp` cubes; draw them for people.
fit
    Bring stamps of any size to a model's stamp size (crop, bin, resample).
normalise
    The Lupton asinh normalisation shared by training and serving.
morphology
    Non-parametric morphology (CAS, Gini-M20, MID, shape asymmetry) of one stamp.
providers
    ONNX Runtime execution providers: names, defaults, checks that an accelerator really started.
embedder
    :class:`~encoders.embedder.OnnxEmbedder`: normalised stamps to embeddings with ONNX Runtime.
training
    Everything that needs torch: VICReg training, augmentations, ONNX export, diagnostics.

Everything but :mod:`encoders.training` is on the serving path and imports no torch. The package imports
nothing itself, so importing one module does not load the others.
"""

__all__: list[str] = []
