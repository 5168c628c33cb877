"""The per-epoch progress line (with a sparkline of the validation loss) and the loss-curve
PNG of a training run, drawn with Pillow."""

from __future__ import annotations

import math

from loczoo.progress import duration

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values, width: int = 30) -> str:
    """The last ``width`` values as unicode blocks, lowest ▁ to highest █ (log scale when
    they span more than a factor of 10)."""
    values = [v for v in values[-width:] if math.isfinite(v)]
    if not values:
        return ""
    if min(values) > 0 and max(values) > 10 * min(values):
        values = [math.log10(v) for v in values]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * len(SPARK)))]
                   for v in values)


def progress_line(history: list[dict], epochs: int, seconds_per_epoch: float) -> str:
    """'epoch 3/10  loss 0.12  val_loss 0.15  lr 0.001  4.1 s/epoch  ETA 29 s  ▇▄▁'."""
    row = history[-1]
    done = len(history)
    values = "  ".join(f"{k} {v:.4g}" for k, v in row.items()
                       if k not in ("epoch", "learning_rate", "seconds"))
    eta = duration(seconds_per_epoch * (epochs - done))
    spark = sparkline([r["val_loss"] for r in history if "val_loss" in r])
    return (f"epoch {done}/{epochs}  {values}  lr {row['learning_rate']:.3g}  "
            f"{row['seconds']:.1f} s/epoch  ETA {eta}  {spark}")


CURVE_COLOURS = {"loss": (31, 119, 180), "val_loss": (255, 127, 14)}
CURVE_LABELS = {"loss": "training loss", "val_loss": "validation loss"}


def curves_image(history: list[dict], title: str = "", size=(640, 400)):
    """Training and validation loss against epoch as a PIL image: axes with tick labels, a
    legend, and a log-scale y axis when the losses span more than a factor of 20."""
    epochs = [row["epoch"] + 1 for row in history]
    series = {CURVE_LABELS[key]: ([e for e, row in zip(epochs, history)
                                   if key in row and math.isfinite(row[key])],
                                  [row[key] for row in history
                                   if key in row and math.isfinite(row[key])],
                                  colour) for key, colour in CURVE_COLOURS.items()}
    return line_plot(series, "epoch", "loss", title, size, integer_x=True, log_y="auto")


def line_plot(series: dict, x_label: str, y_label: str, title: str = "", size=(640, 400),
              integer_x: bool = False, log_y="auto"):
    """Lines of ``series`` ({label: (xs, ys, RGB colour)}) as a PIL image: axes with tick
    labels, grid, a legend, points marked when there are 60 or fewer. ``log_y``: True, False
    or "auto" (log when the values are positive and span more than a factor of 20)."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = _font(12)
    series = {label: (list(xs), list(ys), colour) for label, (xs, ys, colour) in series.items()}
    values = [v for _, ys, _ in series.values() for v in ys]
    xs_all = [x for xs, _, _ in series.values() for x in xs]
    left, right, top, bottom = 70, width - 15, 30, height - 45
    if title:
        draw.text(((left + right - draw.textlength(title, font=font)) / 2, 8), title,
                  fill="black", font=font)
    if not values:
        return image
    log = (min(values) > 0 and max(values) > 20 * min(values)) if log_y == "auto" else log_y
    scale = math.log10 if log else float
    low, high = scale(min(values)), scale(max(values))
    pad = 0.05 * (high - low) or 0.5
    low, high = low - pad, high + pad
    if integer_x:
        first, last = min(xs_all) - 0.5, max(xs_all) + 0.5
    else:
        first, last = min(xs_all), max(xs_all)
        if last == first:
            first, last = first - 0.5, last + 0.5

    def px(x):
        return left + (x - first) / (last - first) * (right - left)

    def py(value):
        return bottom - (scale(value) - low) / (high - low) * (bottom - top)

    grey = (225, 225, 225)
    y_ticks = _log_ticks(low, high) if log else _nice_ticks(low, high)
    for tick in y_ticks:
        y = py(tick)
        draw.line([(left, y), (right, y)], fill=grey)
        label = f"{tick:.3g}"
        draw.text((left - 6 - draw.textlength(label, font=font), y - 7), label, fill="black",
                  font=font)
    for tick in _nice_ticks(first, last, integers=integer_x):
        x = px(tick)
        draw.line([(x, top), (x, bottom)], fill=grey)
        label = str(int(tick)) if integer_x or float(tick).is_integer() else f"{tick:.3g}"
        draw.text((x - draw.textlength(label, font=font) / 2, bottom + 5), label,
                  fill="black", font=font)
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right - draw.textlength(x_label, font=font)) / 2, bottom + 22), x_label,
              fill="black", font=font)
    draw.text((left - 60, top - 22), f"{y_label} (log scale)" if log else y_label,
              fill="black", font=font)
    for xs, ys, colour in series.values():
        corners = [(px(x), py(v)) for x, v in zip(xs, ys)]
        if len(corners) > 1:
            draw.line(corners, fill=colour, width=2)
        if len(corners) <= 60:
            for x, y in corners:
                draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colour)
    labels = [label for label, (xs, _, _) in series.items() if xs]
    legend_w = 36 + max(draw.textlength(label, font=font) for label in labels)
    x0, y0 = right - 10 - legend_w, top + 10
    draw.rectangle([x0, y0, right - 10, y0 + 8 + 18 * len(labels)], fill="white",
                   outline=(160, 160, 160))
    for i, label in enumerate(labels):
        y = y0 + 5 + 18 * i
        draw.line([(x0 + 6, y + 7), (x0 + 28, y + 7)], fill=series[label][2], width=3)
        draw.text((x0 + 32, y), label, fill="black", font=font)
    return image


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _nice_ticks(low: float, high: float, count: int = 6, integers: bool = False) -> list:
    """Round tick values (1, 2 or 5 times a power of ten) between ``low`` and ``high``."""
    span = max(high - low, 1e-12)
    step = 10 ** math.floor(math.log10(span / count))
    step *= next(m for m in (1, 2, 5, 10) if span / (step * m) <= count)
    if integers:
        step = max(1, round(step))
    start = math.ceil(low / step) * step
    return [start + i * step for i in range(int((high - start) / step) + 1)]


def _log_ticks(low: float, high: float) -> list:
    """1, 2, 5 x powers of ten between 10**low and 10**high (1 only if they span > 3 decades)."""
    steps = (1,) if high - low > 3 else (1, 2, 5)
    ticks = [m * 10.0 ** d for d in range(math.floor(low), math.ceil(high) + 1) for m in steps]
    return [t for t in ticks if low <= math.log10(t) <= high]
