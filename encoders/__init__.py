"""encoders: stamps -> normalised cubes -> embeddings.

:mod:`encoders.stamps` reads stamp files, :mod:`encoders.normalise` and :mod:`encoders.fit` bring them to a
model's contract, :mod:`encoders.morphology` measures non-parametric morphology, and
:mod:`encoders.embedder` embeds them with ONNX Runtime: the serving path (numpy, astropy, Pillow,
onnxruntime only). Everything that needs torch (VICReg training, ONNX export) is in
:mod:`encoders.training`. Kept import-free on purpose.
"""
