"""A procedural generator of fluorescence images of single cells, one labelled protein pattern per
class, in TensorFlow (stateless seeds: the same seed gives the same images on CPU and GPU and
inside tf.data).

It exists so that tests and the embedded demo have labelled images. The images are SYNTHETIC:
accuracy on them says nothing about accuracy on real cells (2D HeLa, CHO, LOCATE, DeepYeast).

Each cell is an ellipse with an elliptic nucleus; the pattern is drawn as a density map in cell
coordinates, blurred by a Gaussian PSF, scaled to photons, put on a background and passed through
the SMLM camera model (``loczoo.smlm.simulate.apply_camera``). Coordinates are normalised: the
image spans [-1, 1] in x and y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import tensorflow as tf

from loczoo.config import check_range
from loczoo.errors import LoczooError
from loczoo.smlm.simulate import CameraConfig, apply_camera, split_seeds, uniform

# The classes, in label order: the compartments of the 2D HeLa / LOCATE data sets that a
# procedural model can draw distinguishably.
PATTERNS = ("nucleus", "nucleoli", "er", "golgi", "vesicles", "mitochondria", "actin",
            "microtubules")


@dataclass(frozen=True, kw_only=True)
class CellImagingConfig:
    """Image size and intensities of the simulated cells. ``dna_channel`` adds a second channel
    with the nucleus (a DAPI/Hoechst counterstain, as LOCATE pairs its images)."""

    size: int = 64
    psf_sigma_px: float = 1.0
    peak_photons: tuple[float, float] = (60.0, 400.0)
    background_photons: tuple[float, float] = (2.0, 15.0)
    dna_channel: bool = False
    patterns: tuple[str, ...] = PATTERNS
    camera: CameraConfig = field(default_factory=CameraConfig.scmos)

    def __post_init__(self):
        if self.size < 16:
            raise LoczooError(f"cell image size must be >= 16 px, got {self.size}")
        if not self.psf_sigma_px > 0:
            raise LoczooError(f"psf_sigma_px must be > 0, got {self.psf_sigma_px}")
        check_range("peak_photons", self.peak_photons, 0.0)
        check_range("background_photons", self.background_photons, 0.0)
        unknown = sorted(set(self.patterns) - set(PATTERNS))
        if unknown or not self.patterns or len(set(self.patterns)) != len(self.patterns):
            raise LoczooError(f"patterns must be distinct names from {', '.join(PATTERNS)}; got "
                              f"{list(self.patterns)}")

    @property
    def channels(self) -> int:
        return 2 if self.dna_channel else 1


def _smooth_field(seed, batch, size: int, grid: int):
    """Unit-variance random field [B, S, S] with features about size / grid pixels across."""
    coarse = tf.random.stateless_normal([batch, grid, grid, 1], seed)
    fine = tf.image.resize(coarse, [size, size], method="bicubic")[..., 0]
    mean, var = tf.nn.moments(fine, axes=[1, 2], keepdims=True)
    return (fine - mean) * tf.math.rsqrt(var + 1e-6)


def _ridge(values, width: float):
    """1 on the zero set of ``values``, falling off over ``width``: lines and networks."""
    return tf.exp(-tf.square(values / width))


def _blobs(x, y, centres_x, centres_y, sigma, weights):
    """Sum of Gaussian spots: grids x, y [1, S, S]; centres and weights [B, K]; sigma scalar or
    [B, 1, 1, 1]."""
    dx = x[:, None] - centres_x[:, :, None, None]
    dy = y[:, None] - centres_y[:, :, None, None]
    spots = tf.exp(-(tf.square(dx) + tf.square(dy)) / (2.0 * tf.square(sigma)))
    return tf.reduce_sum(weights[:, :, None, None] * spots, axis=1)


class _Cell:
    """Geometry of a batch of cells: ellipse and nucleus, as [B, 1, 1] tensors."""

    def __init__(self, seed, batch, x, y):
        s = split_seeds(seed, 8)
        b = [batch, 1, 1]
        self.cx, self.cy = uniform(b, s[0], -0.12, 0.12), uniform(b, s[1], -0.12, 0.12)
        self.a, self.b = uniform(b, s[2], 0.62, 0.85), uniform(b, s[3], 0.45, 0.62)
        self.angle = uniform(b, s[4], 0.0, math.pi)
        self.cos, self.sin = tf.cos(self.angle), tf.sin(self.angle)
        # Nucleus: 35-45 % of the cell's axes, shifted a little along the long axis.
        self.nuc_scale = uniform(b, s[5], 0.35, 0.45)
        shift = uniform(b, s[6], -0.15, 0.15) * self.a
        self.nx, self.ny = self.cx + shift * self.cos, self.cy + shift * self.sin
        u, v = self.local(x, y, self.cx, self.cy)
        self.r_cell = tf.sqrt(tf.square(u / self.a) + tf.square(v / self.b))
        nu, nv = self.local(x, y, self.nx, self.ny)
        self.r_nucleus = tf.sqrt(tf.square(nu / (self.nuc_scale * self.a))
                                 + tf.square(nv / (self.nuc_scale * self.b)))
        self.cell = tf.sigmoid((1.0 - self.r_cell) / 0.03)
        self.nucleus = tf.sigmoid((1.0 - self.r_nucleus) / 0.04)
        self.cytoplasm = self.cell * (1.0 - self.nucleus)

    def local(self, x, y, cx, cy):
        """Image coordinates -> the cell's rotated frame centred on (cx, cy)."""
        dx, dy = x - cx, y - cy
        return dx * self.cos + dy * self.sin, -dx * self.sin + dy * self.cos

    def to_image(self, u, v, cx, cy):
        """The cell's rotated frame -> image coordinates; u, v [B, K]."""
        cos, sin = self.cos[:, :, 0], self.sin[:, :, 0]
        return cx[:, :, 0] + u * cos - v * sin, cy[:, :, 0] + u * sin + v * cos

    def points_in(self, seed, count: int, scale_a, scale_b, cx, cy, radius: float = 1.0):
        """``count`` points per cell, uniform in the ellipse (scale_a, scale_b) x radius about
        (cx, cy), in image coordinates [B, K]."""
        s = split_seeds(seed, 2)
        batch = tf.shape(cx)[0]
        scale_a = tf.broadcast_to(tf.cast(scale_a, tf.float32), tf.shape(cx))
        scale_b = tf.broadcast_to(tf.cast(scale_b, tf.float32), tf.shape(cx))
        r = radius * tf.sqrt(uniform([batch, count], s[0], 0.0, 1.0))
        phi = uniform([batch, count], s[1], 0.0, 2 * math.pi)
        return self.to_image(r * tf.cos(phi) * scale_a[:, :, 0], r * tf.sin(phi) * scale_b[:, :, 0],
                             cx, cy)


def _pattern_densities(seed, batch, size: int, cell: _Cell, x, y) -> dict:
    """Density maps [B, S, S] (about 0-1) of every pattern for the same cells."""
    s = split_seeds(seed, 16)
    n = cell.nuc_scale
    out = {}
    out["nucleus"] = cell.nucleus * (0.8 + 0.15 * _smooth_field(s[0], batch, size, 6))

    # 2-5 bright nucleoli inside the nucleus over a faint nucleoplasm.
    px, py = cell.points_in(s[1], 5, n * cell.a, n * cell.b, cell.nx, cell.ny, radius=0.6)
    on = tf.cast(uniform([batch, 5], s[2], 0.0, 1.0) < 0.6, tf.float32)
    on = tf.maximum(on, tf.one_hot(tf.zeros([batch], tf.int32), 5))  # at least one
    out["nucleoli"] = _blobs(x, y, px, py, 0.045, on) + 0.1 * cell.nucleus

    # ER: a reticular network (the zero set of a random field), densest around the nucleus.
    er = _ridge(_smooth_field(s[3], batch, size, 13), 0.3)
    out["er"] = cell.cytoplasm * er * (1.3 - 0.6 * tf.minimum(cell.r_cell, 1.0))

    # Golgi: a compact cluster of small stacks beside the nucleus.
    phi = uniform([batch, 1, 1], s[4], 0.0, 2 * math.pi)
    reach = n * (cell.a + cell.b) / 2 + 0.1
    gx, gy = cell.nx + reach * tf.cos(phi), cell.ny + reach * tf.sin(phi)
    bx, by = cell.points_in(s[5], 10, 0.12, 0.12, gx, gy)
    out["golgi"] = cell.cytoplasm * _blobs(x, y, bx, by, 0.03, tf.ones([batch, 10]))

    # Vesicles (endosomes, lysosomes): puncta scattered over the cytoplasm.
    vx, vy = cell.points_in(s[6], 45, cell.a, cell.b, cell.cx, cell.cy, radius=0.95)
    weights = uniform([batch, 45], s[7], 0.5, 1.0)
    out["vesicles"] = cell.cytoplasm * _blobs(x, y, vx, vy, 0.022, weights)

    # Mitochondria: short tubules (a fine ridge network cut into segments).
    tubes = _ridge(_smooth_field(s[8], batch, size, 14), 0.3)
    segments = tf.sigmoid(3.0 * _smooth_field(s[9], batch, size, 8))
    out["mitochondria"] = cell.cytoplasm * tubes * segments

    # Actin: parallel stress fibres across the cell plus the cortex under the membrane.
    theta = cell.angle + uniform([batch, 1, 1], s[10], -0.4, 0.4)
    across = (x - cell.cx) * -tf.sin(theta) + (y - cell.cy) * tf.cos(theta)
    wobble = 0.5 * _smooth_field(s[11], batch, size, 3)
    fibres = _ridge(tf.sin(math.pi * across / 0.09 + wobble), 0.35)
    cortex = _ridge(cell.r_cell - 0.9, 0.05)
    out["actin"] = cell.cell * (0.7 * fibres + cortex)

    # Microtubules: filaments radiating from a centrosome next to the nucleus, curving.
    psi = uniform([batch, 1, 1], s[12], 0.0, 2 * math.pi)
    mx, my = cell.nx + reach * 0.8 * tf.cos(psi), cell.ny + reach * 0.8 * tf.sin(psi)
    alpha = tf.atan2(y - my, x - mx)
    bend = 1.2 * _smooth_field(s[13], batch, size, 4)
    radial = _ridge(tf.sin(9.0 * alpha + bend), 0.3)
    dist = tf.sqrt(tf.square(x - mx) + tf.square(y - my))
    aster = _ridge(dist, 0.06)
    out["microtubules"] = cell.cell * (radial * tf.minimum(1.0, dist / 0.1) + aster)
    return out


def _gaussian_blur(images, sigma_px: float):
    """Separable Gaussian blur of [B, S, S]: the microscope's PSF."""
    half = max(1, int(math.ceil(3 * sigma_px)))
    t = tf.range(-half, half + 1, dtype=tf.float32)
    kernel = tf.exp(-tf.square(t) / (2.0 * sigma_px ** 2))
    kernel /= tf.reduce_sum(kernel)
    x = images[..., None]
    x = tf.nn.conv2d(x, tf.reshape(kernel, [-1, 1, 1, 1]), 1, "SAME")
    x = tf.nn.conv2d(x, tf.reshape(kernel, [1, -1, 1, 1]), 1, "SAME")
    return x[..., 0]


def simulate_cells(seed, labels, config: CellImagingConfig) -> dict:
    """Images of cells with the patterns ``labels`` [B] (indices into ``config.patterns``).
    Returns ``images`` [B, S, S, C] in ADU (channel 0 the protein; 1 the DNA stain when
    ``dna_channel``), ``mean_photons`` [B, S, S, C] (before noise) and the soft ``cell`` and
    ``nucleus`` masks [B, S, S]."""
    labels = tf.convert_to_tensor(labels, tf.int32)
    batch, size = tf.shape(labels)[0], config.size
    s = split_seeds(seed, 6)
    coords = (tf.range(size, dtype=tf.float32) + 0.5) / size * 2.0 - 1.0
    y, x = tf.meshgrid(coords, coords, indexing="ij")
    x, y = x[None], y[None]
    cell = _Cell(s[0], batch, x, y)
    densities = _pattern_densities(s[1], batch, size, cell, x, y)
    stacked = tf.stack([densities[name] for name in config.patterns], axis=1)  # [B, P, S, S]
    density = tf.gather(stacked, labels, axis=1, batch_dims=1)
    channels = [density] + ([cell.nucleus] if config.dna_channel else [])
    mean = []
    for i, channel in enumerate(channels):
        si = split_seeds(s[2 + i], 2)
        blurred = _gaussian_blur(tf.maximum(channel, 0.0), config.psf_sigma_px)
        peak = tf.reduce_max(blurred, axis=[1, 2], keepdims=True)
        photons = uniform([batch, 1, 1], si[0], *config.peak_photons)
        background = uniform([batch, 1, 1], si[1], *config.background_photons)
        mean.append(blurred / tf.maximum(peak, 1e-6) * photons + background)
    mean = tf.stack(mean, axis=-1)
    return {"images": apply_camera(s[5], mean, config.camera), "mean_photons": mean,
            "cell": cell.cell, "nucleus": cell.nucleus}


def balanced_labels(count: int, n_classes: int, seed) -> tf.Tensor:
    """``count`` labels with every class equally often (up to one), in a seeded random order."""
    labels = tf.range(count, dtype=tf.int32) % n_classes
    return tf.random.experimental.stateless_shuffle(labels, split_seeds(seed, 1)[0])
