"""Peak finding on predicted maps and sub-pixel refinement, shared by the image-output entries."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from loczoo.smlm.localizations import Localizations

REFINEMENTS = ("cog", "none")


@tf.function(reduce_retracing=True)
def _peaks(heatmap, threshold, neighborhood: int):
    h = tf.nn.relu(tf.cast(heatmap, tf.float32))
    pooled = tf.nn.max_pool2d(h, neighborhood, strides=1, padding="SAME")
    peaks = (h >= pooled) & (h > threshold)
    # 3 x 3 centre of gravity: sum of d * I over sum of I, d in {-1, 0, 1} pixels.
    d = tf.constant([-1.0, 0.0, 1.0])
    kx = tf.tile(d[None, :], [3, 1])[:, :, None, None]
    ky = tf.tile(d[:, None], [1, 3])[:, :, None, None]
    ones = tf.ones([3, 3, 1, 1])
    total = tf.nn.conv2d(h, ones, 1, "SAME")
    mx = tf.nn.conv2d(h, kx, 1, "SAME")
    my = tf.nn.conv2d(h, ky, 1, "SAME")
    index = tf.where(peaks[..., 0])
    gather = lambda t: tf.gather_nd(t[..., 0], index)  # noqa: E731
    return index, gather(h), gather(total), gather(mx) / gather(total), gather(my) / gather(total)


def heatmap_to_localizations(heatmap, *, threshold: float, pixel_size_nm: float,
                             neighborhood: int = 3, refine: str = "cog",
                             height: int | None = None, width: int | None = None,
                             confidence_scale: float = 1.0) -> Localizations:
    """Localizations from a batch of maps [B, H, W, 1] on a grid of ``pixel_size_nm``.

    A localization is a pixel that equals the maximum of its ``neighborhood`` x ``neighborhood``
    window and exceeds ``threshold``. With ``refine="cog"`` its position is shifted by the 3 x 3
    centre of gravity and its confidence is the 3 x 3 sum, otherwise the peak value; both are
    divided by ``confidence_scale`` into the ``prob`` column. Peaks at or beyond row ``height``
    / column ``width`` (padding added before inference) are dropped. Frames are batch index + 1.
    """
    if refine not in REFINEMENTS:
        raise ValueError(f"refine must be one of {REFINEMENTS}, got {refine!r}")
    index, peak, total, dx, dy = (np.asarray(t) for t in _peaks(
        heatmap, tf.constant(threshold, tf.float32), int(neighborhood)))
    b, row, col = index[:, 0], index[:, 1], index[:, 2]
    keep = np.ones(b.size, bool)
    if height is not None:
        keep &= row < height
    if width is not None:
        keep &= col < width
    if refine == "none":
        dx, dy, total = np.zeros_like(dx), np.zeros_like(dy), peak
    return Localizations(
        frame=b[keep] + 1,
        x=(col[keep] + 0.5 + dx[keep]) * pixel_size_nm,
        y=(row[keep] + 0.5 + dy[keep]) * pixel_size_nm,
        prob=total[keep] / confidence_scale)
