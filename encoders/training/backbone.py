"""A small ResNet for multi-band galaxy stamps (any number of bands).

ResNet-18-style BasicBlocks (He et al. 2016) with two changes for small stamps:
the stem is one 3x3 convolution (stride ``stem_stride``) without max-pooling, so
structure a few pixels across (double nuclei ~2-8 px apart in 64x64 stamps) survives
the first layers; and the widths/depths are small so that inference stays fast on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNetEncoder"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut.

    Parameters
    ----------
    in_ch, out_ch : int
        Input and output channels.
    stride : int
        Stride of the first convolution (2 halves the resolution).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(branch(x) + shortcut(x))``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """ResNet backbone mapping ``(N, in_bands, H, W)`` stamps to ``(N, out_dim)`` features.

    Parameters
    ----------
    in_bands : int
        Number of input bands (5 for u,g,r,i,z; any value >= 1).
    widths : sequence of int
        Channels of each stage; stage ``i > 0`` halves the resolution.
    blocks : sequence of int
        BasicBlocks per stage (same length as ``widths``).
    stem_stride : int
        Stride of the 3x3 stem convolution (1 or 2). With the defaults a 64x64 stamp
        is seen at 32, 16, 8 and 4 pixels by the four stages.

    Attributes
    ----------
    out_dim : int
        Feature dimension, ``widths[-1]`` (after global average pooling).

    Notes
    -----
    About 64 MMAC per 5x64x64 stamp with the defaults (1.2 M parameters).
    """

    def __init__(
        self,
        in_bands: int = 5,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (1, 1, 1, 1),
        stem_stride: int = 2,
    ) -> None:
        super().__init__()
        widths, blocks = tuple(int(w) for w in widths), tuple(int(b) for b in blocks)
        if in_bands < 1:
            raise ValueError(f"ResNetEncoder in_bands must be >= 1, got {in_bands}")
        if not widths or len(widths) != len(blocks):
            raise ValueError(f"ResNetEncoder widths {widths} and blocks {blocks} must be non-empty and of equal length")
        if min(widths) < 1 or min(blocks) < 1:
            raise ValueError(f"ResNetEncoder widths {widths} and blocks {blocks} must all be >= 1")
        if stem_stride not in (1, 2):
            raise ValueError(f"ResNetEncoder stem_stride must be 1 or 2, got {stem_stride}")
        self.in_bands = int(in_bands)
        self.widths = widths
        self.blocks = blocks
        self.stem_stride = int(stem_stride)
        self.out_dim = widths[-1]

        self.stem = nn.Sequential(
            nn.Conv2d(in_bands, widths[0], 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_ch = widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            layers = [BasicBlock(in_ch, width, stride=1 if i == 0 else 2)]
            layers += [BasicBlock(width, width) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*layers))
            in_ch = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last BN of each residual branch: every block starts as identity,
        # which stabilises early training (Goyal et al. 2017).
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(N, out_dim)`` features for ``(N, in_bands, H, W)`` stamps."""
        if not torch.jit.is_tracing() and (x.ndim != 4 or x.shape[1] != self.in_bands):
            raise ValueError(f"ResNetEncoder expects input (N, {self.in_bands}, H, W), got shape {tuple(x.shape)}")
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)

    def config(self) -> dict[str, object]:
        """Constructor arguments as plain values (for checkpoints)."""
        return {
            "in_bands": self.in_bands,
            "widths": list(self.widths),
            "blocks": list(self.blocks),
            "stem_stride": self.stem_stride,
        }
