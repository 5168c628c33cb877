"""PLCNN configuration. The paper publishes only a figure of the network, so every size below is
an assumption (listed in README.md); ``default()`` is loczoo's choice, ``tiny()`` for tests."""

from __future__ import annotations

from dataclasses import dataclass

from loczoo.errors import LoczooError
from loczoo.proteins.simulate import PATTERNS

MATCHING = ("pool", "strided")
FEATURE_BRANCHES = ("thumbnail", "none")


@dataclass(frozen=True, kw_only=True)
class PLCNNConfig:
    """PLCNN (Tahir, Anwar, Mian; Neural Comput Appl 2021): a residual and a plain stream whose
    outputs are concatenated three times (each concatenation feeds both streams through their
    own conv + ReLU), then the last outputs of both streams and a feature branch taken straight
    from the input go through one fully connected softmax layer.

    Assumptions (not given by the paper): ``features`` channels in every conv (64),
    ``kernel_size`` 3, 2 x 2 max pooling, images resized to ``input_size`` (128) and z-scored per
    image and channel; the residual stream is one pooling behind the plain one at the first
    concatenation and ``matching`` "pool" max-pools it ("strided": a stride-2 conv) to match;
    each large block halves the size (R_l with a stride-2 transition conv, P_l with a pool);
    both streams end in global average pooling; ``feature_branch`` "thumbnail" is the input
    average-pooled to 8 x 8 and flattened ("none": no branch); batch norm with ``bn_momentum``
    0.9 (PyTorch's default; Keras's 0.99 let the moving statistics lag so far behind the
    fast-changing weights that inference accuracy stayed at 40 % while training accuracy was
    98 %). Training: Adam at
    ``learning_rate`` with cross-entropy, batch ``batch_size``, random 90-degree rotations and
    flips, class-balanced batches.
    """

    class_names: tuple[str, ...] = PATTERNS
    channels: int = 1
    input_size: int = 128
    features: int = 64
    kernel_size: int = 3
    matching: str = "pool"
    feature_branch: str = "thumbnail"
    bn_momentum: float = 0.9
    learning_rate: float = 1e-3
    batch_size: int = 16

    def __post_init__(self):
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise LoczooError(f"class_names must be two or more distinct names, got "
                              f"{list(self.class_names)}")
        if self.channels < 1:
            raise LoczooError(f"channels must be >= 1, got {self.channels}")
        if self.input_size < 32 or self.input_size % 32:
            raise LoczooError(f"input_size must be a multiple of 32 (five halvings), got "
                              f"{self.input_size}")
        if self.features < 1 or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise LoczooError(f"features must be >= 1 and kernel_size odd, got "
                              f"{self.features} and {self.kernel_size}")
        if self.matching not in MATCHING:
            raise LoczooError(f"matching must be one of {MATCHING}, got {self.matching!r}")
        if self.feature_branch not in FEATURE_BRANCHES:
            raise LoczooError(f"feature_branch must be one of {FEATURE_BRANCHES}, got "
                              f"{self.feature_branch!r}")
        if not 0 < self.bn_momentum < 1:
            raise LoczooError(f"bn_momentum must be in (0, 1), got {self.bn_momentum}")
        if self.learning_rate <= 0 or self.batch_size < 1:
            raise LoczooError(f"learning_rate must be > 0 and batch_size >= 1, got "
                              f"{self.learning_rate} and {self.batch_size}")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def tiny(cls, **kw):
        """Four features per layer, 32 x 32 inputs: for tests only."""
        return cls(**{"input_size": 32, "features": 4, "batch_size": 4, **kw})
