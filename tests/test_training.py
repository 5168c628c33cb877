"""The shared training loop: a run folder usable after every epoch and after Ctrl-C, resume
with the result of an uninterrupted run, progress lines, loss curves and TensorBoard logs, and
multi-worker training equal to one process with the same global batch."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loczoo import curves, distribute, training
from loczoo.bundle import load_bundle
from loczoo.errors import LoczooError
from loczoo.progress import StatusLine
from loczoo.registry import get_entry

TINY = ["deep_storm", "--config", "tiny", "--validation-steps", "1", "--seed", "0"]


def weights(folder: Path) -> list[np.ndarray]:
    return load_bundle(str(folder)).model.get_weights()


def history(folder: Path) -> list[dict]:
    """The metadata history without the wall-clock seconds."""
    rows = json.loads((folder / "metadata.json").read_text())["history"]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def interrupt_at(monkeypatch, epochs_done: int, batch: int = 0) -> None:
    """Ctrl-C during the training step ``batch`` after ``epochs_done`` completed epochs."""
    def on_train_batch_end(self, step, logs=None):
        if self.run.epochs_done == epochs_done and step == batch:
            raise KeyboardInterrupt

    monkeypatch.setattr(training._EpochEnd, "on_train_batch_end", on_train_batch_end)


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    scalars = {}
    for path in sorted(folder.glob("*/events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars.setdefault(f"{path.parent.name}/{value.tag}", []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return scalars


def test_run_folder_progress_curves_and_logs(tmp_path, run_cli, monkeypatch):
    # The duration estimate as soon as one step is timed (real runs wait for a few seconds).
    monkeypatch.setattr(training._StepProgress, "ESTIMATE_STEPS", 1)
    monkeypatch.setattr(training._StepProgress, "ESTIMATE_SECONDS", 0.0)
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", *TINY, "--steps-per-epoch", "2", "--epochs", "3",
                                "--out", out)
    assert code == 0, err
    assert f"run folder: {out}" in stdout
    estimates = [line for line in err.splitlines() if line.startswith("about ")]
    assert len(estimates) == 1 and estimates[0].endswith(
        "s per step: the 3 epochs of 2 steps take about 0 s (plus validation)"), err
    assert "\r" not in err  # not a terminal: no in-place status line
    lines = [line for line in err.splitlines()
             if line.startswith("epoch ") and " step " not in line]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("val_loss" in line and "lr 0.001" in line and "ETA" in line for line in lines)
    assert len(lines[-1].split()[-1]) == 3 and set(lines[-1].split()[-1]) <= set(curves.SPARK)

    meta = json.loads((out / "metadata.json").read_text())
    assert meta["complete"] and not meta["interrupted"] and meta["epochs_done"] == 3
    for key in ("entry", "date", "versions", "parameters", "data", "command", "seed",
                "steps_per_epoch", "epochs_requested", "best_val_loss", "history",
                "initialised_from"):
        assert key in meta, key
    assert not (out / "checkpoint").exists()  # a complete run keeps no resume state
    with open(out / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert list(rows[0]) == ["epoch", "loss", "val_loss", "learning_rate", "seconds"]
    assert [float(r["val_loss"]) for r in rows] == [r["val_loss"] for r in meta["history"]]
    assert meta["best_val_loss"] == min(float(r["val_loss"]) for r in rows)
    assert Image.open(out / "curves.png").size == (640, 400)
    scalars = tensorboard_scalars(out / "logs")
    assert [step for step, _ in scalars["validation/epoch_loss"]] == [0, 1, 2]
    assert [v for _, v in scalars["train/epoch_loss"]] == pytest.approx(
        [float(r["loss"]) for r in rows])
    assert "train/epoch_learning_rate" in scalars
    assert load_bundle(str(out)).metadata["epochs_done"] == 3


def test_resume_gives_the_result_of_an_uninterrupted_run(tmp_path, run_cli, monkeypatch):
    # A learning rate this high makes the validation loss stall, so that ReduceLROnPlateau
    # acts after the interruption, counting epochs from before it.
    argv = ["train", *TINY, "--set", "learning_rate=0.3", "--steps-per-epoch", "1",
            "--epochs", "8", "--quiet"]
    code, _, err = run_cli(*argv, "--out", tmp_path / "whole")
    assert code == 0, err
    rates = [row["learning_rate"] for row in history(tmp_path / "whole")]
    assert rates[0] > rates[-1], rates  # the schedule acted

    interrupted = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        interrupt_at(patch, epochs_done=4)
        code, _, err = run_cli(*argv, "--out", interrupted)
    assert code == 130 and "interrupted after 4 of 8 epochs" in err
    meta = json.loads((interrupted / "metadata.json").read_text())
    assert meta["interrupted"] and meta["epochs_done"] == 4 and not meta["complete"]
    assert (interrupted / "checkpoint" / "train.weights.h5").is_file()
    assert load_bundle(str(interrupted)).metadata["epochs_done"] == 4

    code, _, err = run_cli(*argv, "--out", interrupted, "--resume")
    assert code == 0, err
    assert history(interrupted) == history(tmp_path / "whole")
    for got, expected in zip(weights(interrupted), weights(tmp_path / "whole")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    meta = json.loads((interrupted / "metadata.json").read_text())
    assert meta["complete"] and meta["resumed"][0]["from_epoch"] == 4
    assert not (interrupted / "checkpoint").exists()
    code, _, err = run_cli(*argv, "--out", interrupted, "--resume")
    assert code == 2 and "is complete (8 epochs)" in err


def test_ctrl_c_before_the_first_epoch_leaves_the_starting_weights(tmp_path, monkeypatch):
    entry = get_entry("deep_storm")
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, epochs_done=0)
        training.train(entry, entry.config_cls.tiny(), out, steps_per_epoch=2, epochs=2,
                       validation_steps=1, quiet=True)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["interrupted"] and meta["epochs_done"] == 0 and meta["history"] == []
    import keras

    bundle = load_bundle(str(out))
    keras.utils.set_random_seed(0)  # train's seed: the same initial weights
    for got, expected in zip(bundle.model.get_weights(),
                             entry.build_model(bundle.config).get_weights()):
        np.testing.assert_array_equal(got, expected)
    training.train(entry, entry.config_cls.tiny(), out, steps_per_epoch=2, epochs=2,
                   validation_steps=1, quiet=True, resume=True)
    assert json.loads((out / "metadata.json").read_text())["complete"]


def test_refused_commands_say_why_in_one_line(tmp_path, run_cli, monkeypatch, tiny_run):
    cases = [
        (["--out", tmp_path / "missing", "--resume"], "does not exist"),
        (["--out", tiny_run, "--resume", "--overwrite"], "exclude each other"),
        (["--out", tiny_run, "--resume"], "is complete"),
        (["--out", tiny_run], "exists; pass --overwrite"),
        (["--out", tmp_path / "mw", "--strategy", "multiworker"], "needs the TF_CONFIG"),
    ]
    for name in [n for n in os.environ if n.startswith(("TF_CONFIG", "SLURM_"))]:
        monkeypatch.delenv(name)
    for extra, message in cases:
        code, _, err = run_cli("train", *TINY, "--steps-per-epoch", "1", "--epochs", "1",
                               *extra)
        assert code == 2 and message in err, (extra, err)
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "missing").exists() and not (tmp_path / "mw").exists()

    monkeypatch.setenv("TF_CONFIG", "{not json")
    code, _, err = run_cli("train", *TINY, "--out", tmp_path / "mw", "--strategy", "multiworker")
    assert code == 2 and "TF_CONFIG is not JSON" in err


def test_resume_refuses_other_settings(tmp_path, run_cli, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, epochs_done=1)
        code, _, _ = run_cli("train", *TINY, "--steps-per-epoch", "1", "--epochs", "2",
                             "--out", out, "--quiet")
    assert code == 130
    code, _, err = run_cli("train", *TINY, "--steps-per-epoch", "2", "--epochs", "2",
                           "--set", "upsampling=4", "--out", out, "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "steps_per_epoch 1 (asked: 2)" in err and "config.upsampling 2 (asked: 4)" in err
    code, _, err = run_cli("train", "dsir", "--config", "tiny", "--out", out, "--resume")
    assert code == 2 and "is a deep_storm run, not dsir" in err
    code, _, err = run_cli("train", *TINY, "--steps-per-epoch", "1", "--epochs", "2",
                           "--out", out, "--resume", "--precision", "bfloat16")
    assert code == 2 and "precision 'float32' (asked: 'bfloat16')" in err


def test_mirrored_strategy_on_this_machine_gives_the_default_result(tmp_path):
    entry = get_entry("deep_storm")
    runs = {name: training.train(entry, entry.config_cls.tiny(), tmp_path / name,
                                 steps_per_epoch=2, epochs=1, validation_steps=1, quiet=True,
                                 strategy=name) for name in ("default", "mirrored")}
    assert json.loads((runs["mirrored"] / "metadata.json").read_text())["strategy"] == "mirrored"
    for got, expected in zip(weights(runs["mirrored"]), weights(runs["default"])):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


CLIP_SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from loczoo import distribute

def fit(strategy, fix):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
        optimizer = keras.optimizers.SGD(0.1, global_clipnorm=0.01)
        if fix:
            distribute.clip_after_all_reduce(optimizer)
        model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, 10 * x.sum(1, keepdims=True))).batch(8)
    model.fit(data, epochs=2, verbose=0)
    return np.concatenate([w.ravel() for w in model.get_weights()])

one = fit(tf.distribute.get_strategy(), False)
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
print(np.abs(fit(two, True) - one).max(), np.abs(fit(two, False) - one).max())
"""


def test_two_replicas_clip_the_summed_gradient_like_one():
    """Two replicas on two logical CPUs (a subprocess: devices are set before TensorFlow
    starts). Keras alone clips each replica's half of the gradient; clip_after_all_reduce
    clips their sum, as one process does."""
    result = subprocess.run([sys.executable, "-c", CLIP_SCRIPT], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    fixed, keras_alone = map(float, result.stdout.split())
    assert fixed < 1e-6 and keras_alone > 1e-3, (fixed, keras_alone)


def test_stream_from_skips_without_computing_or_element_by_element():
    import tensorflow as tf

    def batch(i):  # like the entries' streams: element i seeded by its index
        return tf.random.stateless_uniform([2], tf.stack([tf.constant(7, tf.int64), i]))

    def indexed():
        return tf.data.Dataset.range(2**62).map(batch)

    def shuffled():  # no random access; a new dataset object, as in a resumed process
        return tf.data.Dataset.range(50).shuffle(50, seed=3).repeat()

    for make in (indexed, shuffled):
        expected = [x.numpy() for x in make().take(8)][5:]
        got = [x.numpy() for x in training.stream_from(make(), 5).take(3)]
        np.testing.assert_array_equal(got, expected)


class FakeStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def step_progress(tty: bool, quiet: bool = False, epochs: int = 100, steps: int = 400):
    clock, stream = FakeClock(), FakeStream(tty)
    status = StatusLine(quiet=quiet, stream=stream, clock=clock)
    return training._StepProgress(status, epochs, steps, clock=clock), clock, stream


def run_steps(progress, clock, epoch: int, steps: range, first: float, each: float):
    progress.on_epoch_begin(epoch)
    for step in steps:
        clock.now += first if step == 0 and progress.session_steps == 0 else each
        progress.on_train_batch_end(step, {"loss": 0.5 / (step + 1)})


def test_progress_within_an_epoch_in_a_log():
    """Not a terminal: plain lines at most every 30 s, and the duration estimate once, after
    three timed steps (the first step, which traces the graph, is not timed)."""
    progress, clock, stream = step_progress(tty=False)
    run_steps(progress, clock, 0, range(20), first=40.0, each=5.0)
    lines = stream.getvalue().splitlines()
    # Step 1 (40 s after the start, not timed), the estimate after step 4, then every 30 s.
    assert lines == [
        "epoch 1/100 step 1/400 loss 0.5",
        "about 5 s per step: the 100 epochs of 400 steps take about 55 h 33 min (plus "
        "validation); lower --epochs or --steps-per-epoch for a shorter run",
        "epoch 1/100 step 10/400 loss 0.05, 5 s/step",
        "epoch 1/100 step 16/400 loss 0.03125, 5 s/step"]
    assert "\r" not in stream.getvalue()
    progress.close()
    progress.on_train_batch_end(20, {"loss": 0.1})  # a late call from Keras's thread
    assert stream.getvalue().splitlines() == lines


def test_progress_within_an_epoch_on_a_terminal():
    """A terminal: the status line is rewritten in place; the epoch line replaces it."""
    progress, clock, stream = step_progress(tty=True, epochs=3, steps=4)
    run_steps(progress, clock, 1, range(4), first=3.0, each=0.8)
    text = stream.getvalue()
    assert text.startswith("\repoch 2/3 step 1/4 loss 0.5")
    assert "\repoch 2/3 step 2/4 loss 0.25, 0.8 s/step" in text
    assert text.endswith("\repoch 2/3 step 4/4 loss 0.125, 0.8 s/step, validating")
    assert "about" not in text  # short runs: no estimate before the first epoch line
    progress.status.print("epoch 2/3  loss 0.125  ...")
    assert stream.getvalue().endswith(" " * len("epoch 2/3 step 4/4 loss 0.125, 0.8 s/step, "
                                                "validating") + "\repoch 2/3  loss 0.125  ...\n")
    # The next epoch is timed from its start; a resumed run counts the remaining epochs.
    assert progress.estimate(2.0) == ("about 2 s per step: the 2 remaining epochs of 4 steps "
                                      "take about 16 s (plus validation)")


def test_quiet_progress_prints_nothing():
    progress, clock, stream = step_progress(tty=True, quiet=True)
    run_steps(progress, clock, 0, range(50), first=40.0, each=5.0)
    progress.close()
    assert stream.getvalue() == ""


def test_sparkline_and_curves():
    assert curves.sparkline([4.0, 3.0, 2.0, 1.0]) == "█▆▃▁"
    assert curves.sparkline([5.0, 5.0]) == "▁▁" and curves.sparkline([]) == ""
    rows = [{"epoch": i, "loss": 100 * 0.5**i, "val_loss": 120 * 0.6**i} for i in range(12)]
    image = np.asarray(curves.curves_image(rows, "test"))
    # Both curves are drawn in their colours.
    for colour in curves.CURVE_COLOURS.values():
        assert (image == colour).all(axis=-1).sum() > 100
    assert curves._log_ticks(-1.0, 2.0) == pytest.approx(
        [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100])
    assert curves._nice_ticks(0.5, 12.5, integers=True) == [2, 4, 6, 8, 10, 12]


def test_tf_config_checks_and_slurm():
    assert distribute.check_tf_config(
        '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
    for bad in ('[]', '{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}',
                '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
                '{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}'):
        with pytest.raises(LoczooError, match="TF_CONFIG"):
            distribute.check_tf_config(bad)
    env = {"SLURM_PROCID": "2", "SLURM_STEP_NODELIST": "gpu[07-08]",
           "SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURMD_NODENAME": "gpu08"}
    assert distribute.slurm_tf_config(env) == {
        "cluster": {"worker": ["gpu07:8888", "gpu07:8889", "gpu08:8888", "gpu08:8889"]},
        "task": {"type": "worker", "index": 2}}
    assert distribute.slurm_tf_config({}) is None
    with pytest.raises(LoczooError, match="block order"):
        distribute.slurm_tf_config({**env, "SLURMD_NODENAME": "gpu07"})


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_give_the_single_process_result(tmp_path, run_cli):
    """Two worker processes on this machine, each with its TF_CONFIG; the global batch (2) is
    split over them. The chief's weights equal those of one process with the same batch."""
    argv = ["train", *TINY, "--steps-per-epoch", "3", "--epochs", "2"]
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    out = tmp_path / "multi"
    procs = []
    for index in range(2):
        env = {**os.environ, "TMPDIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                        "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "loczoo.tools.cli", *map(str, argv), "--out", str(out),
             "--strategy", "multiworker"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert "this is worker 1" in results[1][1] and "worker 1 done" in results[1][0]
    assert not list(tmp_path.glob("loczoo-worker*"))  # worker 1's files are gone

    code, _, err = run_cli(*argv, "--out", tmp_path / "single", "--quiet")
    assert code == 0, err
    meta = json.loads((out / "metadata.json").read_text())
    assert (meta["strategy"], meta["workers"], meta["replicas"]) == ("multiworker", 2, 2)
    # Same batches, split differently: float sums in another order (and batch-norm statistics
    # summed over the workers) differ by a few ulp, about 1e-7 after six steps.
    for got, expected in zip(weights(out), weights(tmp_path / "single")):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    single = history(tmp_path / "single")
    assert [r["loss"] for r in history(out)] == pytest.approx([r["loss"] for r in single],
                                                              rel=1e-5)
