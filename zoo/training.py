"""Training loop shared by every entry: the entry's optimizer (Adam by default), loss and
datasets, per-epoch checkpoints in ``OUT.partial/`` and, at the end, a run folder ``OUT``
written atomically."""

from __future__ import annotations

import csv
import shutil
import signal
import threading
import warnings
from pathlib import Path

from loczoo import runfolder
from loczoo.config import save_json
from loczoo.errors import LoczooError
from loczoo.registry import ZooEntry


def train(entry: ZooEntry, config, out: str | Path, *, source=None, steps_per_epoch: int,
          epochs: int, validation_steps: int = 20, seed: int = 0, init: str | None = None,
          overwrite: bool = False, quiet: bool = False, data_description: str = "simulator",
          command: str = "") -> Path:
    """Train ``entry`` and write the run folder ``out``. Ctrl-C (or SIGTERM) stops training: the
    run folder then holds the best weights so far and its metadata says it was interrupted."""
    import keras

    out = Path(out)
    if out.exists() and not overwrite:
        raise LoczooError(f"output {out} exists; pass --overwrite to replace it")
    keras.utils.set_random_seed(seed)
    if init is None:  # a fine-tuned model keeps the data constants of its parent
        config = entry.prepare_config(config, source, seed)
    model = entry.build_model(config)
    if init is not None:
        from loczoo.bundle import resolve

        model.load_weights(resolve(init).weights)
    optimizer = entry.optimizer(config)
    metrics = entry.make_metrics(config) if entry.make_metrics else None
    model.compile(optimizer=optimizer, loss=entry.make_loss(config), metrics=metrics)

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_json(config, partial / runfolder.CONFIG)
    best = partial / "best.weights.h5"
    callbacks = [
        keras.callbacks.ModelCheckpoint(best, save_best_only=True, save_weights_only=True),
        keras.callbacks.ModelCheckpoint(partial / "last.weights.h5", save_weights_only=True),
        keras.callbacks.CSVLogger(partial / "history.csv"),
    ]
    if not isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        # Deep-STORM's schedule (factor 0.1, patience 5, min 5e-5) on the validation loss,
        # unless the entry's optimizer brings its own schedule.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(factor=0.1, patience=5, min_lr=5e-5))
    train_ds = entry.make_dataset(config, "train", source=source, seed=seed)
    # The same validation batches every epoch: the stream is seeded per element index.
    val_ds = entry.make_dataset(config, "validation", source=source, seed=seed).take(
        validation_steps)
    # Keras warns that it cannot shuffle a tf.data stream; ours is random by construction.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    interrupted = False
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:  # `kill` stops like Ctrl-C (signal handlers exist only in the main thread)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        model.fit(train_ds, steps_per_epoch=steps_per_epoch, epochs=epochs,
                  validation_data=val_ds, callbacks=callbacks, verbose=0 if quiet else 2)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    if best.exists():
        model.load_weights(best)
    history = _read_history(partial / "history.csv")
    metadata = {"data": data_description, "command": command, "seed": seed,
                "steps_per_epoch": steps_per_epoch, "epochs_requested": epochs,
                "epochs_done": len(history), "interrupted": interrupted,
                "best_val_loss": min((h["val_loss"] for h in history), default=None),
                "history": history, "initialised_from": init}
    folder = runfolder.write_run_folder(out, entry=entry.name, config=config, model=model,
                                        metadata=metadata, overwrite=True)
    shutil.rmtree(partial, ignore_errors=True)
    return folder


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
