"""TFLite export for a fixed input size with TFLite's built-in ops only (no Flex ops, so the
stock LiteRT interpreter runs it), the loczoo config embedded as model metadata, and a tiled
runner so that ``loczoo localize --model MODEL.tflite`` handles frames of any size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loczoo.bundle import ModelBundle
from loczoo.errors import LoczooError
from loczoo.export.common import ExportSource, frozen_function
from loczoo.layout import TensorLayout
from loczoo.quiet import stderr_silenced

METADATA_NAME = "loczoo"
DEFAULT_SIZE = (64, 64)  # camera pixels; larger frames are tiled


def convert(source: ExportSource, size: tuple[int, int]) -> bytes:
    """The network for inputs [1, H, W, C] as a .tflite flatbuffer; refuses Flex ops."""
    import tensorflow as tf

    source.check_size(size)
    try:
        # Freezing and converting log from C++ to descriptor 2, and the converter warns of
        # deprecations; what goes wrong is in the exception.
        with stderr_silenced():
            frozen = frozen_function(source.model, source.input_shape(size, batch=1))
            converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], source.model)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            data = converter.convert()
    except Exception as err:  # noqa: BLE001 - the converter raises many types
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise LoczooError(f"TFLite conversion of {source.name} failed: {lines[-1]}") from None
    flex = [op for op in operator_names(data) if op.startswith(("CUSTOM", "Flex"))]
    if flex:
        raise LoczooError(f"the TFLite model of {source.name} needs non-built-in ops "
                          f"{', '.join(flex)}; the stock interpreter cannot run it")
    return data


def operator_names(data: bytes) -> list[str]:
    """The operator names of a .tflite model (custom ops by their custom code)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    names = []
    for index, code in enumerate(model.operatorCodes):
        builtin = flatbuffer_utils.get_builtin_code_from_operator_code(code)
        name = flatbuffer_utils.opcode_to_name(model, index)
        if builtin == flatbuffer_utils.schema_fb.BuiltinOperator.CUSTOM:
            name = f"CUSTOM:{code.customCode.decode() if code.customCode else '?'}"
        names.append(name)
    return sorted(set(names))


def with_metadata(data: bytes, metadata: dict) -> bytes:
    """``data`` with ``metadata`` (JSON) stored as the model metadata entry ``loczoo``."""
    from ai_edge_litert.tools import flatbuffer_utils

    fb = flatbuffer_utils.schema_fb
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    buffer = fb.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = fb.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# The flatbuffer file identifier of a TFLite model, at bytes 4-8.
TFLITE_IDENTIFIER = b"TFL3"
NOT_EXPORTED = "was it exported by `loczoo export --format tflite`?"


def read_metadata(path: Path) -> dict:
    """The loczoo metadata embedded in the .tflite model ``path`` (entry, config, layout, input
    size). A file that is not a TFLite model, a truncated one, or one without (or with
    damaged) loczoo metadata is a LoczooError that names it."""
    from ai_edge_litert.tools import flatbuffer_utils

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LoczooError(f"cannot read TFLite model {path}: {err.strerror or err}") from None
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise LoczooError(f"{path} is not a TFLite model (no TFLite header)")
    try:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
        entries = []
        for entry in model.metadata or []:
            name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
            entries.append((name, entry.buffer))
        found = [buffer for name, buffer in entries if name == METADATA_NAME]
        text = bytes(model.buffers[found[0]].data).decode() if found else None
    except Exception:  # noqa: BLE001 - a cut or damaged flatbuffer raises many types
        raise LoczooError(f"{path} is a damaged or truncated TFLite model (its flatbuffer "
                          f"cannot be read)") from None
    if text is None:
        raise LoczooError(f"{path} has no loczoo metadata ({NOT_EXPORTED})")
    try:
        meta = json.loads(text)
    except ValueError:
        raise LoczooError(f"{path} has damaged loczoo metadata (not JSON; {NOT_EXPORTED})"
                          ) from None
    missing = [key for key in ("entry", "config", "input_size") if not isinstance(meta, dict)
               or key not in meta]
    if missing:
        raise LoczooError(f"{path} has damaged loczoo metadata (no {', '.join(missing)}; "
                          f"{NOT_EXPORTED})")
    return meta


def export_tflite(source: ExportSource, out: Path, size: tuple[int, int]) -> dict:
    """Write ``out`` (.tflite) for inputs of ``size``; returns what the model card lists."""
    from dataclasses import asdict

    from loczoo.config import to_dict

    if source.layout.fixed_size is not None:
        size = (source.layout.fixed_size,) * 2
    data = convert(source, size)
    metadata = {"entry": source.entry.name, "source": source.name,
                "config": to_dict(source.bundle.config),
                "layout": asdict(source.layout), "input_size": list(size),
                "training": {k: source.bundle.metadata.get(k) for k in ("data", "command")}}
    out.write_bytes(with_metadata(data, metadata))
    return {"input size": f"{size[0]} x {size[1]} px (larger frames are tiled)",
            "operators": ", ".join(operator_names(data))}


def tile_starts(length: int, tile: int, margin: int, multiple: int) -> list[int]:
    """Start positions of tiles of ``tile`` px covering ``length`` px, overlapping by twice the
    margin, on the network's pooling grid (multiples of ``multiple``)."""
    if length <= tile:
        return [0]
    step = (tile - 2 * margin) // multiple * multiple
    if step < multiple:
        raise LoczooError(f"tiles of {tile} px cannot keep a {margin} px margin")
    return [*range(0, length - tile, step), length - tile]


@dataclass
class TiledInterpreter:
    """Runs a fixed-size .tflite network on inputs [N, H, W, C] of any size: inputs smaller
    than the tile are edge-padded, larger ones are cut into overlapping tiles whose centres
    (all but ``margin`` px at inner edges) are stitched together."""

    path: Path
    layout: TensorLayout
    tile: tuple[int, int]

    def __post_init__(self):
        from ai_edge_litert.interpreter import Interpreter

        try:
            # LiteRT prints "Created TensorFlow Lite XNNPACK delegate for CPU." from C++.
            with stderr_silenced():
                self.interpreter = Interpreter(model_path=str(self.path))
                self.interpreter.allocate_tensors()
            inputs = self.interpreter.get_input_details()
            outputs = self.interpreter.get_output_details()
        except (ValueError, RuntimeError) as err:
            lines = str(err).strip().splitlines() or [type(err).__name__]
            raise LoczooError(f"the TFLite interpreter cannot run {self.path}: {lines[0]}"
                              ) from None
        if len(inputs) != 1 or len(outputs) != 1:
            raise LoczooError(f"{self.path} has {len(inputs)} inputs and {len(outputs)} "
                              f"outputs; a loczoo export has one of each")
        self._in, self._out = inputs[0]["index"], outputs[0]["index"]

    def _run(self, x):
        self.interpreter.set_tensor(self._in, np.ascontiguousarray(x[None], np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out)[0]

    def __call__(self, inputs) -> np.ndarray:
        inputs = np.asarray(inputs, np.float32)
        if not self.layout.spatial_output:
            return np.stack([self._run(x) for x in inputs])
        n, height, width, _ = inputs.shape
        th, tw = self.tile
        padded = np.pad(inputs, ((0, 0), (0, max(0, th - height)), (0, max(0, tw - width)),
                                 (0, 0)), mode="edge")
        big_h, big_w = padded.shape[1:3]
        up, m = self.layout.upsampling, self.layout.tile_margin
        rows = tile_starts(big_h, th, m, self.layout.input_multiple)
        cols = tile_starts(big_w, tw, m, self.layout.input_multiple)
        out = np.zeros((n, big_h * up, big_w * up, len(self.layout.output_channels)),
                       np.float32)
        for i in range(n):
            for r in rows:
                r0, r1 = (0 if r == 0 else r + m), (big_h if r + th >= big_h else r + th - m)
                for c in cols:
                    c0, c1 = (0 if c == 0 else c + m), (big_w if c + tw >= big_w else c + tw - m)
                    y = self._run(padded[i, r:r + th, c:c + tw])
                    out[i, r0 * up:r1 * up, c0 * up:c1 * up] = \
                        y[(r0 - r) * up:(r1 - r) * up, (c0 - c) * up:(c1 - c) * up]
        return out[:, :height * up, :width * up]


class TFLiteBundle(ModelBundle):
    """A ModelBundle whose network is a loczoo .tflite export (pre- and post-processing come
    from the entry and the embedded config)."""

    def __post_init__(self):
        self._forward = self.model

    def with_camera(self, overrides: list[str]) -> ModelBundle:
        if overrides and self.entry.reads_camera:
            raise LoczooError("a TFLite model has its camera built in; export it again from a "
                              "model for that camera")
        return self


def load_tflite_bundle(path: str | Path) -> TFLiteBundle:
    from loczoo.config import from_dict
    from loczoo.registry import get_entry

    path = Path(path)
    if not path.is_file():
        raise LoczooError(f"TFLite model {path} does not exist")
    meta = read_metadata(path)
    try:
        if not isinstance(meta["entry"], str):
            raise LoczooError(f"entry must be a name, got {meta['entry']!r}")
        entry = get_entry(meta["entry"])
        config = from_dict(entry.config_cls, meta["config"])
        size = meta["input_size"]
        if not (isinstance(size, list) and len(size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                        for v in size)):
            raise LoczooError(f"input_size must be two positive integers, got {size!r}")
        training = meta.get("training") or {}
        if not isinstance(training, dict):
            raise LoczooError(f"training must be an object, got {training!r}")
    except LoczooError as err:
        raise LoczooError(f"{path} has damaged loczoo metadata: {err}") from None
    layout = entry.tensor_layout(config)
    runner = TiledInterpreter(path, layout, tuple(size))
    return TFLiteBundle(entry=entry, config=config, model=runner,
                        metadata={"tflite": str(path), **training},
                        source=f"TFLite model {path} (from {meta.get('source', 'unknown')})")
