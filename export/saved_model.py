"""SavedModel exports: a native TF2 SavedModel (Keras ExportArchive) and a frozen, TF1-style
SavedModel (no variables, no function library) that old TensorFlow runtimes load, such as
DeepImageJ's TF 2.10 / 2.7 engines. Both have a ``serving_default`` signature whose keys are
the tensor ids ``input`` and ``output``."""

from __future__ import annotations

from pathlib import Path

from loczoo.export.common import INPUT_ID, OUTPUT_ID, ExportSource, frozen_function
from loczoo.quiet import stderr_silenced


def write_native(source: ExportSource, folder: Path) -> None:
    """A TF2 SavedModel with endpoint ``serve`` (also ``serving_default``) returning
    ``{"output": y}``; any batch and, unless the network has a fixed size, any H and W."""
    import keras
    import tensorflow as tf

    model = source.model
    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = tf.TensorSpec(source.input_shape(), tf.float32, name=INPUT_ID)
    archive.add_endpoint("serve", tf.function(lambda x: {OUTPUT_ID: model(x, training=False)},
                                              input_signature=[signature]))
    with stderr_silenced():  # TensorFlow's C++ log and deprecation notices
        archive.write_out(str(folder), verbose=False)


def write_frozen(source: ExportSource, folder: Path) -> None:
    """A TF1-builder SavedModel of the frozen graph (tag ``serve``)."""
    # Freezing logs from C++ (Grappler), and the TF1 builder warns that it is deprecated.
    with stderr_silenced():
        _write_frozen(source, folder)


def _write_frozen(source: ExportSource, folder: Path) -> None:
    import tensorflow as tf

    frozen = frozen_function(source.model, source.input_shape())
    graph_def = frozen.graph.as_graph_def()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
        x = graph.get_tensor_by_name(frozen.inputs[0].name)
        y = tf.identity(graph.get_tensor_by_name(frozen.outputs[0].name), name=OUTPUT_ID)
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(folder))
            signature = tf.compat.v1.saved_model.predict_signature_def(
                inputs={INPUT_ID: x}, outputs={OUTPUT_ID: y})
            builder.add_meta_graph_and_variables(
                session, [tf.saved_model.SERVING], signature_def_map={"serving_default": signature},
                strip_default_attrs=True)
            builder.save()


def run_saved_model(folder: Path, inputs):
    """The ``serving_default`` output of a SavedModel (either kind) on ``inputs``."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    result = loaded.signatures["serving_default"](**{INPUT_ID: tf.constant(inputs, tf.float32)})
    return np.asarray(result[OUTPUT_ID])


def export_saved_model(source: ExportSource, out: Path, card: str) -> dict:
    """``out/native`` and ``out/frozen`` SavedModels plus ``out/model_card.md``."""
    write_native(source, out / "native")
    write_frozen(source, out / "frozen")
    (out / "model_card.md").write_text(card)
    return {"native": out / "native", "frozen": out / "frozen"}
