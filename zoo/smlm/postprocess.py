"""Peak finding on predicted maps and sub-pixel refinement, shared by the image-output entries."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from loczoo.smlm.localizations import Localizations

REFINEMENTS = ("cog", "quadratic", "none")


def _conv(images, kernel):
    return tf.nn.conv2d(images, tf.constant(kernel, tf.float32)[:, :, None, None], 1, "SAME")


@tf.function(reduce_retracing=True)
def _peaks(heatmap, threshold, neighborhood: int, quadratic: bool):
    h = tf.nn.relu(tf.cast(heatmap, tf.float32))
    pooled = tf.nn.max_pool2d(h, neighborhood, strides=1, padding="SAME")
    peaks = (h >= pooled) & (h > threshold)
    index = tf.where(peaks[..., 0])
    gather = lambda t: tf.gather_nd(t[..., 0], index)  # noqa: E731
    total = gather(_conv(h, np.ones((3, 3))))
    if quadratic:
        # Parabola through (-1, I[j-1]), (0, I[j]), (1, I[j+1]) along each axis; its vertex is
        # at (I[j+1] - I[j-1]) / (2 (2 I[j] - I[j+1] - I[j-1])). Clipped to half a pixel.
        diff = np.zeros((3, 3))
        diff[1] = [-1.0, 0.0, 1.0]
        curve = np.zeros((3, 3))
        curve[1] = [-1.0, 2.0, -1.0]
        offsets = []
        for d, c in ((diff, curve), (diff.T, curve.T)):
            num, den = gather(_conv(h, d)), gather(_conv(h, c))
            offset = tf.math.divide_no_nan(num, 2.0 * den)
            offsets.append(tf.where(den > 0, tf.clip_by_value(offset, -0.5, 0.5), 0.0))
        return index, gather(h), total, offsets[0], offsets[1]
    # 3 x 3 centre of gravity: sum of d * I over sum of I, d in {-1, 0, 1} pixels.
    d = np.tile([-1.0, 0.0, 1.0], (3, 1))
    return index, gather(h), total, gather(_conv(h, d)) / total, gather(_conv(h, d.T)) / total


def heatmap_to_localizations(heatmap, *, threshold: float, pixel_size_nm: float,
                             neighborhood: int = 3, refine: str = "cog",
                             height: int | None = None, width: int | None = None,
                             confidence_scale: float = 1.0) -> Localizations:
    """Localizations from a batch of maps [B, H, W, 1] on a grid of ``pixel_size_nm``.

    A localization is a pixel that equals the maximum of its ``neighborhood`` x ``neighborhood``
    window and exceeds ``threshold``. ``refine="cog"`` shifts its position by the 3 x 3 centre
    of gravity (Deep-STORM) and ``"quadratic"`` to the vertex of a parabola through the peak
    and its two neighbours along each axis (Yee, Hagen and Ventura). The confidence is the
    3 x 3 sum with "cog", otherwise the peak value, divided by ``confidence_scale`` into the
    ``prob`` column. Peaks at or beyond row ``height``
    / column ``width`` (padding added before inference) are dropped. Frames are batch index + 1.
    """
    if refine not in REFINEMENTS:
        raise ValueError(f"refine must be one of {REFINEMENTS}, got {refine!r}")
    index, peak, total, dx, dy = (np.asarray(t) for t in _peaks(
        heatmap, tf.constant(threshold, tf.float32), int(neighborhood), refine == "quadratic"))
    b, row, col = index[:, 0], index[:, 1], index[:, 2]
    keep = np.ones(b.size, bool)
    if height is not None:
        keep &= row < height
    if width is not None:
        keep &= col < width
    if refine == "none":
        dx, dy = np.zeros_like(dx), np.zeros_like(dy)
    if refine != "cog":
        total = peak
    return Localizations(
        frame=b[keep] + 1,
        x=(col[keep] + 0.5 + dx[keep]) * pixel_size_nm,
        y=(row[keep] + 0.5 + dy[keep]) * pixel_size_nm,
        prob=total[keep] / confidence_scale)
