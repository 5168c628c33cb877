"""What an entry's network takes and gives, in the terms exports need (bioimage.io axes and
processing, TFLite tiling): the part of the entry contract that ``loczoo.export`` reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class TensorLayout:
    """The network input is [B, H, W, C] (channels last); the output [B, H * up, W * up, K]
    for localization entries, [B, K] for classifiers (``upsampling`` 0).

    input_channels / output_channels: a name per channel.
    input_multiple: H and W must be multiples of this (poolings); ``fixed_size`` a fixed
        square input instead (classifiers).
    tile_margin: camera pixels a tile needs around the part of it that is kept, so that
        tiled outputs match a whole-frame output (about the receptive field's radius).
    preprocessing: bioimage.io 0.5 processing steps that turn the raw data (camera frames
        in ADU, or images) into the network input; ``[]`` when the network does it itself.
    pixel_size_nm: the camera pixel the model was trained for (None: not a physical grid).
    """

    input_channels: tuple[str, ...]
    output_channels: tuple[str, ...]
    input_multiple: int = 1
    fixed_size: int | None = None
    upsampling: int = 1
    tile_margin: int = 8
    preprocessing: tuple[dict, ...] = ()
    pixel_size_nm: float | None = None

    @property
    def spatial_output(self) -> bool:
        return self.upsampling > 0

    def min_size(self) -> int:
        """The smallest input side worth running: room for a tile margin on both sides plus
        one input multiple, rounded up to a multiple."""
        if self.fixed_size is not None:
            return self.fixed_size
        m = self.input_multiple
        return -(-max(16, 2 * self.tile_margin + m) // m) * m


def localizer_layout(config, output_channels: tuple[str, ...], receptive_radius: int,
                     preprocessing: tuple[dict, ...] = ()) -> TensorLayout:
    """The layout of an image-to-map entry: one camera frame in, maps on a grid
    ``config.upsampling`` times finer out (``config.input_multiple`` and
    ``config.imaging.pixel_size_nm`` as in ``loczoo.smlm.pipeline.LocalizerConfig``).
    ``receptive_radius`` is in output (upsampled) pixels."""
    up = config.upsampling
    return TensorLayout(input_channels=("frame",), output_channels=output_channels,
                        input_multiple=config.input_multiple, upsampling=up,
                        tile_margin=max(2, -(-receptive_radius // up)),
                        preprocessing=preprocessing,
                        pixel_size_nm=config.imaging.pixel_size_nm)
