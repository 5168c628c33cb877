"""Proof that ``loczoo export MODEL --format savedmodel`` SavedModels run in TensorFlow 2.10,
the runtime DeepImageJ's TF2 Java engine (JDLL) wraps, and give Keras's outputs (TF 2.21).

For each model: export in-process (TF 2.21), run the network on a simulated input with Keras,
then load the exports in a TF 2.10 child process three ways: the frozen SavedModel through
``tf.compat.v1.saved_model.loader.load`` + ``Session.run`` on the ``serving_default``
signature's ``input``/``output`` tensors (the C++ loader path of TF-Java's
``SavedModelBundle.load``), the frozen one through ``tf.saved_model.load``, and the native
(Keras ExportArchive) one through ``tf.saved_model.load``. Prints a Markdown table of max abs
differences; a load failure shows as its one-line error.

Make the TF 2.10 environment (Python 3.10) first:

    python3.10 -m venv /tmp/tf210
    /tmp/tf210/bin/pip install 'tensorflow-cpu==2.10.1' 'numpy<1.24' pyyaml

    python benchmarks/deepimagej_tf210.py --tf210-python /tmp/tf210/bin/python \
        [--models deep_storm deepcel0 dsir subpixel_dt decode plcnn] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = ("deep_storm", "deepcel0", "dsir", "subpixel_dt", "decode", "plcnn")
KINDS = ("session", "frozen", "native")  # the three TF 2.10 loads, in table order
RTOL = 1e-4  # pass: max abs diff <= RTOL * max(1, max |y|)

# Runs in TF 2.10: argv[1] is a model folder with x.npy, frozen/ and native/. Saves
# tf210_KIND.npy per load and prints {"tf": version, KIND: None or the one-line error}.
CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf

folder = sys.argv[1]
x = np.load(folder + "/x.npy")

def session():
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], folder + "/frozen")
        signature = meta.signature_def["serving_default"]
        return sess.run(signature.outputs["output"].name, {signature.inputs["input"].name: x})

def load(kind):
    fn = tf.saved_model.load(folder + "/" + kind).signatures["serving_default"]
    return fn(input=tf.constant(x))["output"].numpy()

result = {"tf": tf.__version__}
for kind, run in [("session", session), ("frozen", lambda: load("frozen")),
                  ("native", lambda: load("native"))]:
    try:
        np.save(folder + "/tf210_" + kind + ".npy", run())
        result[kind] = None
    except Exception as e:
        lines = str(e).strip().splitlines() or [""]
        result[kind] = (type(e).__name__ + ": " + lines[0])[:200]
print(json.dumps(result))
"""


def reference(name: str, folder: Path) -> tuple[int, ...]:
    """Export ``name`` to ``folder`` and save a network input x.npy and Keras's y.npy."""
    import numpy as np

    from loczoo.export import export_model
    from loczoo.export.common import load_source, network_input, sample_raw_input

    export_model(name, "savedmodel", folder, overwrite=True)
    source = load_source(name)
    layout = source.layout
    m = layout.input_multiple
    side = layout.fixed_size or -(-2 * layout.min_size() // m) * m
    x = network_input(source, sample_raw_input(source, (side, side)))
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", np.asarray(source.model(x, training=False)))
    return x.shape


def run_tf210(python: str, folder: Path) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    proc = subprocess.run([python, "-c", CHILD, str(folder)], capture_output=True, text=True,
                          env=env)
    if proc.returncode or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]
        return {"tf": "?", **{kind: f"child failed: {tail}" for kind in KINDS}}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(folder: Path, kind: str, error: str | None) -> tuple[str, bool]:
    """The table cell for one TF 2.10 load and whether it passed."""
    import numpy as np

    if error:
        return error.replace("|", "\\|"), False
    y, got = np.load(folder / "y.npy"), np.load(folder / f"tf210_{kind}.npy")
    if got.shape != y.shape:
        return f"shape {got.shape} != {y.shape}", False
    diff = float(np.max(np.abs(got.astype(np.float64) - y)))
    return f"{diff:.2e}", diff <= RTOL * max(1.0, float(np.max(np.abs(y))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tf210-python", required=True, help="python of a TF 2.10 venv")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="entries or presets")
    parser.add_argument("--work", type=Path, help="output folder (default: a temporary one)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the TF1 SavedModel builder's deprecation warnings
    work = args.work or Path(tempfile.mkdtemp(prefix="deepimagej_tf210_"))
    work.mkdir(parents=True, exist_ok=True)
    rows, child_tf = [], "?"
    for name in args.models:
        folder = work / name.replace("/", "-")
        try:
            shape = reference(name, folder)
        except Exception as e:  # noqa: BLE001 - report, go on with the next model
            rows.append(f"| {name} | - | - | - | - | export failed: {type(e).__name__}: {e} |")
            continue
        result = run_tf210(args.tf210_python, folder)
        child_tf = result.get("tf", child_tf)
        cells = [compare(folder, kind, result.get(kind)) for kind in KINDS]
        status = "ok" if all(ok for _, ok in cells) else "FAIL"
        rows.append(f"| {name} | {list(shape)} | " + " | ".join(c for c, _ in cells)
                    + f" | {status} |")

    print(f"reference: TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"loads: TensorFlow {child_tf} ({args.tf210_python}); work folder {work}")
    print(f"pass: max abs diff <= {RTOL:g} * max(1, max |y|)\n")
    print("| model | input shape | frozen (TF 2.10 session) max abs diff "
          "| frozen (TF 2.10 tf.saved_model.load) | native (TF 2.10) | status |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
