"""Block layout of EfficientNet-Lite, as built by the ``efficientnet-lite-pytorch`` package.

Pure Python (no TensorFlow) so that the catalogue can count parts cheaply. Lite models keep
the stem (32 channels), the head (1280 channels), the first stage's input (32) and the repeat
counts of the first and last stages fixed; every other width and repeat count is scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# (repeats, kernel, stride, expand ratio, input filters, output filters) of the seven
# stages of the base network.
_BASE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
_DIVISOR = 8


@dataclass(frozen=True)
class BlockArgs:
    """One MBConv block: kernel size, stride, expand ratio, input and output channels."""

    kernel: int
    stride: int
    expand: int
    in_filters: int
    out_filters: int

    @property
    def has_skip(self) -> bool:
        """Whether the block adds its input to its output (identity shortcut)."""
        return self.stride == 1 and self.in_filters == self.out_filters


def round_filters(filters: int, width: float) -> int:
    """Scale a channel count by ``width`` and round to a multiple of 8 (never down >10%)."""
    scaled = filters * width
    new = max(_DIVISOR, int(scaled + _DIVISOR / 2) // _DIVISOR * _DIVISOR)
    if new < 0.9 * scaled:
        new += _DIVISOR
    return int(new)


def block_layout(width: float, depth: float) -> list[BlockArgs]:
    """Return the MBConv blocks of an EfficientNet-Lite with the given coefficients, in order."""
    blocks: list[BlockArgs] = []
    last = len(_BASE_STAGES) - 1
    for i, (repeats, kernel, stride, expand, fin, fout) in enumerate(_BASE_STAGES):
        fin, fout = round_filters(fin, width), round_filters(fout, width)
        if i in (0, last):
            if i == 0:
                fin = STEM_FILTERS
        else:
            repeats = int(math.ceil(depth * repeats))
        blocks.append(BlockArgs(kernel, stride, expand, fin, fout))
        blocks.extend(BlockArgs(kernel, 1, expand, fout, fout) for _ in range(repeats - 1))
    return blocks


def n_parts(width: float, depth: float) -> int:
    """Return the number of parts (stem + blocks + head) of a Lite model."""
    return len(block_layout(width, depth)) + 2
