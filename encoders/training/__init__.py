"""VICReg training and ONNX export: everything in :mod:`encoders` that needs torch.

Modules
-------
config
    :class:`~encoders.training.config.TrainConfig`, the run's settings with their defaults.
augment
    Batch augmentations of normalised stamps (:class:`~encoders.training.augment.GalaxyAugment`).
data
    Stamp sources (in memory or streamed) and two-view augmented batches.
backbone
    The small multi-band ResNet encoder.
vicreg
    The VICReg loss and expander head.
optim
    Optimisers and the learning-rate schedule.
distributed
    Data parallelism under torchrun.
checkpoint
    Build, save, resume and load checkpoints.
train
    The training loop and its run directory.
diagnostics
    Label-free (and labelled) quality scores of an embedding space.
runs
    A finished run seen from outside: embed a survey, plot the metrics.
onnx_export
    Export a backbone to ONNX with its preprocessing contract in the metadata.

The serving path (server, ssald_index, ingest, clients, the rest of :mod:`encoders`) never imports this
package; the commands that train, export or score load it inside their handlers. The package imports
nothing itself.
"""

__all__: list[str] = []
