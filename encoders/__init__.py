"""encoders: stamp reading, Lupton normalisation, VICReg training, ONNX export and embedding.

Kept import-free on purpose: ``encoders.normalise``, ``encoders.stamps`` and
``encoders.embedder`` are the serving path (numpy, astropy, onnxruntime only);
``encoders.backbone``, ``vicreg``, ``augment``, ``train`` and ``export`` need torch.
"""
