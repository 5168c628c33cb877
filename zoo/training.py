"""Training loop shared by every entry (``loczoo train``, ``loczoo finetune``): the entry's
optimizer (Adam by default), loss and datasets, on one device or several (``loczoo.distribute``).

The run folder ``OUT`` is usable (``load_bundle``) from the start to the end, and after Ctrl-C
or SIGTERM. Each file is replaced atomically (temporary name, then rename; ``loczoo.runfolder``
names, reads and writes them):

- ``config.json``: the entry config (with its data constants), written at the start;
- ``model.weights.h5``: the best weights so far by validation loss (the starting weights until
  the first epoch ends), without optimizer state;
- ``metadata.json``: settings, history so far, ``epochs_done``, ``complete``, ``interrupted``;
- ``history.csv`` (one row per epoch), ``curves.png`` (loss curves), ``logs/`` (TensorBoard
  scalars: ``tensorboard --logdir OUT/logs``);
- ``checkpoint/``: what ``resume=True`` continues from, rewritten after every epoch: the
  weights with optimizer state (``train.weights.h5``) and ``state.json`` (epoch, history, best
  validation loss, the learning-rate schedule's counters, dropout seeds, settings). It is
  deleted when the run completes.

A resumed run gives the weights and history of an uninterrupted one: the data streams are
seeded per element index, so the training stream continues at the element where it stopped.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import keras
import tensorflow as tf

from loczoo import distribute, runfolder
from loczoo.config import from_dict, to_dict
from loczoo.curves import curves_image, progress_line
from loczoo.errors import LoczooError
from loczoo.outputs import prepare_folder_output
from loczoo.progress import StatusLine, duration, per_step
from loczoo.registry import ZooEntry

PRECISIONS = ("float32", "bfloat16")


def train(entry: ZooEntry, config, out: str | Path, *, source=None, steps_per_epoch: int,
          epochs: int, validation_steps: int = 20, seed: int = 0, init: str | None = None,
          overwrite: bool = False, resume: bool = False, quiet: bool = False,
          data_description: str = "simulator", command: str = "",
          strategy="default", extra_metadata: dict | None = None,
          precision: str = "float32") -> Path:
    """Train ``entry`` into the run folder ``out`` and return it. Ctrl-C (or SIGTERM) stops
    training: the run folder then holds the best weights so far, its metadata says it was
    interrupted, and ``resume=True`` (same settings; ``epochs`` may change) continues it.

    ``strategy``: "default", "mirrored", "multiworker" (see ``loczoo.distribute``; create a
    multi-worker strategy at program start with ``distribute.make_strategy``) or a
    tf.distribute strategy. ``config.batch_size`` is the global batch. Only the chief (worker 0)
    writes ``out``. ``precision``: "float32", or "bfloat16" for Keras' mixed_bfloat16 policy
    (bfloat16 arithmetic, float32 weights, outputs and loss): on CPUs with bfloat16
    instructions (AVX512-BF16, AMX) faster than float32; a resumed run keeps its precision.
    ``extra_metadata``: more top-level entries of metadata.json (e.g. ``psf``, the calibrated
    PSF the run was trained with)."""
    out = Path(out)
    if resume and overwrite:
        raise LoczooError("--resume and --overwrite exclude each other")
    if isinstance(strategy, str):
        strategy = distribute.make_strategy(strategy)
    worker, workers = distribute.worker_info(strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise LoczooError(f"batch_size {config.batch_size} (the global batch) does not divide "
                          f"evenly over {replicas} replicas")
    if precision not in PRECISIONS:
        raise LoczooError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    settings = {"entry": entry.name, "config": _json_copy(to_dict(config)),
                "steps_per_epoch": steps_per_epoch, "validation_steps": validation_steps,
                "seed": seed, "data": data_description, "initialised_from": init}
    if precision != "float32":  # (checkpoints written before the option hold no key)
        settings["precision"] = precision
    state = read_checkpoint(out, settings) if resume else None
    if state is None and worker == 0:  # overwrite only a run folder, never its parent model
        prepare_folder_output(out, overwrite, inputs=[init] if init and Path(init).exists()
                              else [])

    keras.utils.set_random_seed(seed)
    if state is not None:
        try:
            config = from_dict(entry.config_cls, state["config"])
        except LoczooError as err:
            state_file = runfolder.checkpoint_folder(out) / runfolder.STATE
            raise LoczooError(f"--resume: {state_file} is damaged ('config': {err}); "
                              f"{_DAMAGED_HINT.format(out=out)}") from None
    elif init is None:  # a fine-tuned model keeps the data constants of its parent
        config = entry.prepare_config(config, source, seed)
    model = _compiled_model(entry, config, strategy, init,
                            resume_from=runfolder.checkpoint_folder(out) if state else None,
                            seed_states=state["seed_states"] if state else {},
                            precision=precision)
    reduce_lr = None
    if not isinstance(model.optimizer._learning_rate,
                      keras.optimizers.schedules.LearningRateSchedule):
        # Deep-STORM's schedule (factor 0.1, patience 5, min 5e-5) on the validation loss,
        # unless the entry's optimizer brings its own schedule.
        reduce_lr = _ResumableReduceLR(factor=0.1, patience=5, min_lr=5e-5,
                                       state=state["reduce_lr"] if state else None)

    # Workers other than the chief write the same files (saving may need every worker) to a
    # temporary folder, deleted at the end.
    folder = out if worker == 0 else Path(tempfile.mkdtemp(prefix=f"loczoo-worker{worker}-"))
    metadata = {"data": data_description, "command": command, "seed": seed,
                "precision": precision,
                "steps_per_epoch": steps_per_epoch, "validation_steps": validation_steps,
                "epochs_requested": epochs, "initialised_from": init,
                "strategy": distribute.strategy_name(strategy), "workers": workers,
                "replicas": replicas, "batch_size": config.batch_size, **(extra_metadata or {})}
    run = _RunFolder(folder, out.name, entry, config, model, settings, metadata, state,
                     quiet=quiet or worker > 0)
    status = StatusLine(quiet=run.quiet)
    steps = _StepProgress(status, epochs, steps_per_epoch)
    # The last callback saves the state of the others.
    callbacks = [c for c in (reduce_lr, steps) if c is not None]
    callbacks.append(_EpochEnd(run, epochs, reduce_lr, status))
    interrupted, lost = False, None
    try:
        with _sigterm_as_interrupt():
            try:
                with _deferred_interrupts():
                    if resume:
                        run.note_resume(command)
                    else:
                        run.start(overwrite)
                if not quiet:
                    where = (f" on {workers} workers ({replicas} replicas; this is worker "
                             f"{worker})" if workers > 1 else
                             f" on {replicas} replicas" if replicas > 1 else "")
                    print(f"training {entry.name}{where}: epochs {run.epochs_done + 1}-{epochs}"
                          f" of {steps_per_epoch} steps, batch {config.batch_size}; run folder "
                          f"{out}", file=sys.stderr, flush=True)
                if run.epochs_done < epochs:
                    train_ds, val_ds = _datasets(entry, config, source, seed, strategy,
                                                 run.epochs_done * steps_per_epoch,
                                                 validation_steps)
                    try:
                        model.fit(train_ds, steps_per_epoch=steps_per_epoch, epochs=epochs,
                                  initial_epoch=run.epochs_done, validation_data=val_ds,
                                  callbacks=callbacks, verbose=0)
                    finally:
                        steps.close()  # the status line gives way to what is printed next
            except KeyboardInterrupt:
                interrupted = True
            except (tf.errors.UnavailableError, tf.errors.AbortedError) as err:
                if workers == 1:
                    raise
                lost, interrupted = err, True  # another worker stopped
            with _deferred_interrupts():
                run.finish(interrupted)
    finally:
        if worker > 0:
            shutil.rmtree(folder, ignore_errors=True)
    if lost is not None:
        raise LoczooError(f"training stopped after {run.epochs_done} epochs: another worker "
                          f"stopped or is unreachable ({type(lost).__name__}); restart all "
                          f"workers with --resume")
    if interrupted and worker > 0:
        raise KeyboardInterrupt  # only the chief has a run folder to report
    return out


def _compiled_model(entry, config, strategy, init: str | None, resume_from: Path | None,
                    seed_states: dict, precision: str = "float32"):
    """The entry's model, compiled with its optimizer and loss in the strategy's scope,
    starting from ``init``'s weights or continuing from the checkpoint ``resume_from``; built
    under the mixed_bfloat16 policy for ``precision`` "bfloat16" (the global policy is
    restored afterwards: layers keep the policy they were built with)."""
    with strategy.scope():
        previous = keras.config.dtype_policy()
        if precision == "bfloat16":
            keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            model = entry.build_model(config)
        finally:
            keras.config.set_dtype_policy(previous)
        if init is not None and resume_from is None:
            from loczoo.bundle import load_weights, resolve

            load_weights(model, resolve(init).weights)
        optimizer = entry.optimizer(config)
        if strategy.num_replicas_in_sync > 1:
            # The single-process result on any number of replicas (see loczoo.distribute).
            distribute.synchronize_batch_norm(model)
            distribute.clip_after_all_reduce(optimizer)
        metrics = entry.make_metrics(config) if entry.make_metrics else None
        model.compile(optimizer=optimizer, loss=entry.make_loss(config), metrics=metrics)
        optimizer.build(model.trainable_variables)  # so that a checkpoint can restore it
        if resume_from is not None:
            _load_checkpoint_weights(model, resume_from, seed_states)
    return model


def _load_checkpoint_weights(model, checkpoint: Path, seed_states: dict) -> None:
    """The weights and optimizer state of ``checkpoint``, and the dropout seeds; a damaged or
    foreign weights file is a LoczooError that names it."""
    path = checkpoint / runfolder.CHECKPOINT_WEIGHTS
    try:
        # Keras only warns when a file lacks the optimizer state or some layers: refuse instead
        # of resuming from a partly restored model.
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            model.load_weights(path)
        _set_seed_states(model, seed_states)
    except Exception as err:  # noqa: BLE001 - h5py and Keras raise many types for bad files
        text = str(err).strip()
        if isinstance(err, OSError):  # h5py: not HDF5, cut short, unreadable
            first = text.splitlines()[0] if text else type(err).__name__
            reason = f"not a readable HDF5 file ({first})"
        else:  # Keras: other layers or shapes, no optimizer state
            reason = "it does not hold this run's weights and optimizer state"
        raise LoczooError(f"--resume: cannot restore the checkpoint {path}: {reason[:200]}; "
                          f"{_DAMAGED_HINT.format(out=checkpoint.parent)}") from None


def _datasets(entry, config, source, seed, strategy, start: int, validation_steps: int):
    """The training stream from element ``start`` on and the validation batches."""
    train_ds = stream_from(entry.make_dataset(config, "train", source=source, seed=seed), start)
    # The same validation batches every epoch: the stream is seeded per element index.
    val_ds = entry.make_dataset(config, "validation", source=source, seed=seed).take(
        validation_steps)
    # Keras warns that it cannot shuffle a tf.data stream; ours is random by construction.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    return (distribute.distribute_dataset(train_ds, strategy),
            distribute.distribute_dataset(val_ds, strategy))


# What a user can do with a run whose checkpoint is damaged.
_DAMAGED_HINT = ("start again with --overwrite, or from its best weights in a new folder "
                 "(train --init {out}, or finetune {out})")


def read_checkpoint(out: Path, settings: dict) -> dict:
    """The resume state in ``out/checkpoint``, checked against this run's ``settings``. A
    missing, unreadable or damaged state file is a LoczooError that names it."""
    ckpt = runfolder.checkpoint_folder(out)
    if not ckpt.is_dir():
        if not Path(out).exists():
            raise LoczooError(f"--resume: {out} does not exist")
        meta = _metadata_or_none(out)
        if meta and meta.get("complete"):
            raise LoczooError(f"{out} is complete ({meta.get('epochs_done')} epochs); nothing "
                              f"to resume (train on from it with --init {out})")
        raise LoczooError(f"--resume: {out} has no checkpoint ({ckpt}) to continue from (on a "
                          f"cluster, every worker needs to see it)")
    path = ckpt / runfolder.STATE
    try:
        state = runfolder.read_state(out)
    except LoczooError as err:  # missing, unreadable, not JSON: the message names the file
        raise LoczooError(f"--resume: {err}; {_DAMAGED_HINT.format(out=out)}") from None
    problem = _state_problem(state)
    weights = ckpt / runfolder.CHECKPOINT_WEIGHTS
    if problem is None and not weights.is_file():
        raise LoczooError(f"--resume: the checkpoint weights {weights} are missing; "
                          f"{_DAMAGED_HINT.format(out=out)}")
    if problem is not None:
        raise LoczooError(f"--resume: {path} is damaged ({problem}); "
                          f"{_DAMAGED_HINT.format(out=out)}")
    stored = state["settings"]
    if stored["entry"] != settings["entry"]:
        raise LoczooError(f"--resume: {out} is a {stored['entry']} run, not {settings['entry']}")
    differences = [f"{key} {stored[key]!r} (asked: {settings[key]!r})"
                   for key in ("steps_per_epoch", "validation_steps", "seed", "data",
                               "initialised_from") if stored[key] != settings[key]]
    if stored.get("precision", "float32") != settings.get("precision", "float32"):
        differences.append(f"precision {stored.get('precision', 'float32')!r} (asked: "
                           f"{settings.get('precision', 'float32')!r})")
    differences += [f"config.{key} {value!r} (asked: {settings['config'].get(key)!r})"
                    for key, value in stored["config"].items()
                    if settings["config"].get(key) != value]
    if differences:
        shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
        raise LoczooError(f"--resume: {out} was started with other settings: {shown}. "
                          f"Repeat its command with --resume: {state['command']}")
    return state


def _state_problem(state) -> str | None:
    """What is wrong with a parsed ``state.json`` (a missing key, a value of the wrong type),
    or None. Checks everything ``train`` reads from it, so that resuming never fails halfway."""
    def number(value, optional=False):
        return (value is None and optional) or (
            isinstance(value, (int, float)) and not isinstance(value, bool))

    def integer(value):
        return isinstance(value, int) and not isinstance(value, bool)

    if not isinstance(state, dict):
        return f"a JSON object ({{...}}) was expected, got {type(state).__name__}"
    kinds = {"epochs_done": integer, "history": lambda v: isinstance(v, list),
             "best_val_loss": lambda v: number(v, optional=True),
             "command": lambda v: isinstance(v, str), "resumed": lambda v: isinstance(v, list),
             "reduce_lr": lambda v: v is None or isinstance(v, dict),
             "seed_states": lambda v: isinstance(v, dict),
             "settings": lambda v: isinstance(v, dict), "config": lambda v: isinstance(v, dict)}
    for key, ok in kinds.items():
        if key not in state:
            return f"no {key!r} entry"
        if not ok(state[key]):
            return f"{key!r} has the wrong type: {_short(state[key])}"
    settings = state["settings"]
    setting_kinds = {"entry": lambda v: isinstance(v, str), "steps_per_epoch": integer,
                     "validation_steps": integer, "seed": integer,
                     "data": lambda v: isinstance(v, str),
                     "initialised_from": lambda v: v is None or isinstance(v, str),
                     "config": lambda v: isinstance(v, dict)}
    for key, ok in setting_kinds.items():
        if key not in settings:
            return f"no 'settings.{key}' entry"
        if not ok(settings[key]):
            return f"'settings.{key}' has the wrong type: {_short(settings[key])}"
    for i, row in enumerate(state["history"]):
        if not (isinstance(row, dict) and integer(row.get("epoch")) and "loss" in row
                and all(isinstance(k, str) and number(v) for k, v in row.items())):
            return f"'history' row {i} is not an epoch's numbers: {_short(row)}"
    if state["epochs_done"] != len(state["history"]):
        return (f"'epochs_done' is {state['epochs_done']} but 'history' has "
                f"{len(state['history'])} epochs")
    reduce_lr = state["reduce_lr"]
    if reduce_lr is not None and not (
            integer(reduce_lr.get("wait")) and integer(reduce_lr.get("cooldown_counter"))
            and number(reduce_lr.get("best"), optional=True)):
        return f"'reduce_lr' is not the learning-rate schedule's counters: {_short(reduce_lr)}"
    if not all(isinstance(v, list) for v in state["seed_states"].values()):
        return "'seed_states' holds a value that is not a list"
    if not all(isinstance(r, dict) for r in state["resumed"]):
        return "'resumed' holds an entry that is not an object"
    return None


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _RunFolder:
    """The run folder and the training state it records: history, best validation loss,
    epochs done. Writes the run-folder files and the resume checkpoint."""

    def __init__(self, folder: Path, name: str, entry, config, model, settings, metadata,
                 state, quiet):
        self.folder, self.name, self.entry, self.config = folder, name, entry, config
        self.model, self.settings, self.metadata, self.quiet = model, settings, metadata, quiet
        self.history = state["history"] if state else []
        self.best = state["best_val_loss"] if state else None
        self.command = state["command"] if state else metadata["command"]
        self.resumed = state["resumed"] if state else []
        self.reduce_lr_state = state["reduce_lr"] if state else None
        self.scalars = _Scalars(runfolder.logs_folder(folder))
        self.plain = None  # an uncompiled copy for the inference weights, built on first use

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    def start(self, overwrite: bool) -> None:
        """A fresh run folder with the starting weights and a checkpoint at epoch 0."""
        if overwrite and self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        runfolder.write_config(self.folder, self.config)
        self.save_inference_weights()
        self.save_checkpoint(None)
        self.write_metadata(complete=False, interrupted=False)

    def note_resume(self, command: str) -> None:
        self.resumed.append({"command": command, "from_epoch": self.epochs_done,
                             "date": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def end_epoch(self, row: dict, reduce_lr) -> None:
        """Record an epoch; rewrite weights (if better), checkpoint, metadata, CSV, curves."""
        self.history.append(row)
        monitor = row.get("val_loss", row["loss"])
        if self.best is None or monitor < self.best:
            self.best = monitor
            self.save_inference_weights()
        self.save_checkpoint(reduce_lr)
        self.write_metadata(complete=False, interrupted=False)
        self.write_history()
        self.scalars.write(row)

    def finish(self, interrupted: bool) -> None:
        complete = not interrupted and self.epochs_done >= self.metadata["epochs_requested"]
        self.write_metadata(complete=complete, interrupted=interrupted)
        self.scalars.close()
        if complete:
            runfolder.remove_checkpoint(self.folder)

    def save_inference_weights(self) -> None:
        if self.plain is None:
            self.plain = self.entry.build_model(self.config)
        self.plain.set_weights(self.model.get_weights())
        runfolder.write_weights(self.folder, self.plain)

    def save_checkpoint(self, reduce_lr) -> None:
        state = {"epochs_done": self.epochs_done, "history": self.history,
                 "best_val_loss": self.best, "command": self.command, "resumed": self.resumed,
                 "reduce_lr": reduce_lr.state() if reduce_lr else self.reduce_lr_state,
                 "seed_states": _seed_states(self.model), "settings": self.settings,
                 "config": _json_copy(to_dict(self.config))}
        runfolder.write_checkpoint(self.folder, self.model, state)  # with optimizer state

    def write_metadata(self, *, complete: bool, interrupted: bool) -> None:
        losses = [row["val_loss"] for row in self.history if "val_loss" in row]
        meta = {**self.metadata, "command": self.command, "epochs_done": self.epochs_done,
                "complete": complete, "interrupted": interrupted,
                "best_val_loss": min(losses, default=None), "history": self.history}
        if self.resumed:
            meta["resumed"] = self.resumed
        runfolder.write_metadata(self.folder, meta, entry=self.entry.name,
                                 parameters=self.model.count_params())

    def write_history(self) -> None:
        runfolder.write_history(self.folder, self.history)
        runfolder.write_curves(self.folder, curves_image(
            self.history, title=f"{self.entry.name}: {self.name}"))


class _EpochEnd(keras.callbacks.Callback):
    """After every epoch: the history row, the run folder and checkpoint (not interrupted
    halfway by Ctrl-C), and a progress line with a sparkline of the validation loss."""

    def __init__(self, run: _RunFolder, epochs: int, reduce_lr, status: StatusLine):
        super().__init__()
        self.run, self.epochs, self.reduce_lr, self.status = run, epochs, reduce_lr, status
        self.started = self.epoch_start = time.monotonic()
        self.session_epochs = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        # ReduceLROnPlateau (if any) put the rate of this epoch into the logs before changing it.
        rate = logs.pop("learning_rate", None)
        if rate is None:
            rate = self.model.optimizer.learning_rate
        seconds = time.monotonic() - self.epoch_start
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items()},
               "learning_rate": float(rate), "seconds": round(seconds, 3)}
        with _deferred_interrupts():
            self.run.end_epoch(row, self.reduce_lr)
        self.session_epochs += 1
        per_epoch = (time.monotonic() - self.started) / self.session_epochs
        self.status.print(progress_line(self.run.history, self.epochs, per_epoch))


class _StepProgress(keras.callbacks.Callback):
    """Progress within an epoch on the status line (rewritten in place on a terminal, a line
    every 30 s in a log): ``epoch 3/100 step 120/400 loss 0.123, 0.8 s/step``; and once, when
    the first steps are timed, how long the whole run takes at that pace.

    The first step of a session traces the graph and is not timed. Keras may call
    ``on_train_batch_end`` from a worker thread (``async_safe``: no wait for each step's loss
    in the training loop), hence the lock."""

    async_safe = True
    # The estimate waits for this many timed steps taking at least this long (or for
    # ESTIMATE_MAX_STEPS steps, however fast).
    ESTIMATE_STEPS, ESTIMATE_SECONDS, ESTIMATE_MAX_STEPS = 3, 5.0, 50
    # From this estimated duration on, the estimate says how to shorten the run.
    LONG_RUN_SECONDS = 1800.0

    def __init__(self, status: StatusLine, epochs: int, steps_per_epoch: int,
                 clock=time.monotonic):
        super().__init__()
        self.status, self.epochs, self.steps_per_epoch = status, epochs, steps_per_epoch
        self.clock = clock
        self.lock = threading.Lock()
        self.first_epoch = None  # the epoch this session started at
        self.session_steps = 0
        self.epoch, self.step, self.base = 0, 0, None
        self.estimated = self.closed = False

    def on_epoch_begin(self, epoch, logs=None):
        with self.lock:
            if self.first_epoch is None:
                self.first_epoch = epoch
            self.epoch, self.step = epoch, 0
            # (time, step) the pace is measured from: the epoch's start, or after the
            # session's first step (graph tracing).
            self.base = None if self.session_steps == 0 else (self.clock(), 0)

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        with self.lock:
            step = batch + 1
            if self.closed or step <= self.step:  # stopped, or a late call from a thread
                return
            self.session_steps += step - self.step
            self.step = step
            if self.base is None:
                self.base = (now, step)
            timed, seconds = step - self.base[1], now - self.base[0]
            pace = seconds / timed if timed else None
            if pace is not None and not self.estimated and (
                    (timed >= self.ESTIMATE_STEPS and seconds >= self.ESTIMATE_SECONDS)
                    or timed >= self.ESTIMATE_MAX_STEPS):
                self.estimated = True
                self.status.print(self.estimate(pace))
            values = ", ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items()
                               if isinstance(v, (int, float)))
            text = (f"epoch {self.epoch + 1}/{self.epochs} step {step}/{self.steps_per_epoch}"
                    f"{' ' + values if values else ''}"
                    f"{f', {per_step(pace)} s/step' if pace is not None else ''}")
            last = step >= self.steps_per_epoch
            if last and self.status.is_tty():
                self.status.update(text + ", validating", force=True)
            elif not last:
                self.status.update(text)

    def estimate(self, pace: float) -> str:
        """'about 4.2 s per step: the 100 epochs of 400 steps take about 46 h 40 min; ...'."""
        epochs = self.epochs - (self.first_epoch or 0)
        total = pace * self.steps_per_epoch * epochs
        which = (f"the {epochs} remaining epoch{'s' if epochs > 1 else ''}" if self.first_epoch
                 else f"the {epochs} epoch{'s' if epochs > 1 else ''}")
        text = (f"about {per_step(pace)} s per step: {which} of {self.steps_per_epoch} steps "
                f"take{'s' if epochs == 1 else ''} about {duration(total)} (plus validation)")
        if total >= self.LONG_RUN_SECONDS:
            text += "; lower --epochs or --steps-per-epoch for a shorter run"
        return text

    def close(self) -> None:
        """Training stopped: no more updates, and the status line is erased."""
        with self.lock:
            self.closed = True
        self.status.clear()


class _ResumableReduceLR(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters (epochs without improvement, best loss, cooldown)
    are saved in the checkpoint and restored on resume."""

    def __init__(self, *, state: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.restored = state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # resets the counters
        if self.restored:
            self.wait = self.restored["wait"]
            self.cooldown_counter = self.restored["cooldown_counter"]
            self.best = self.restored["best"]

    def state(self) -> dict:
        return {"wait": int(self.wait), "cooldown_counter": int(self.cooldown_counter),
                "best": None if self.best is None else float(self.best)}


class _Scalars:
    """TensorBoard event files of the per-epoch scalars (``logs/train``, ``logs/validation``,
    the tags Keras's TensorBoard callback uses), written with TensorFlow's own summary ops:
    Keras's callback needs the tensorboard package, which loczoo does not install."""

    def __init__(self, folder: Path):
        self.folder, self.writers = folder, {}

    def write(self, row: dict) -> None:
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class=summary_pb2.DATA_CLASS_SCALAR).SerializeToString()
        for key, value in row.items():
            if key in ("epoch", "seconds"):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if split not in self.writers:
                self.writers[split] = tf.summary.create_file_writer(str(self.folder / split))
            with self.writers[split].as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(value, tf.float32),
                                 step=row["epoch"], metadata=metadata)
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


def stream_from(dataset, index: int):
    """The elements of ``dataset`` from ``index`` on. The entries' streams are seeded per
    element index and allow random access, so the elements before ``index`` are not computed;
    streams without random access are skipped element by element."""
    if index == 0:
        return dataset
    length = int(dataset.cardinality())
    if length >= 0:
        try:
            tf.data.experimental.at(dataset, index)
        except tf.errors.OpError:
            pass  # no random access (e.g. shuffled real data): skip below
        else:
            return (tf.data.Dataset.range(index, length)
                    .map(lambda i: tf.data.experimental.at(dataset, i),
                         num_parallel_calls=tf.data.AUTOTUNE)
                    .prefetch(tf.data.AUTOTUNE))
    return dataset.skip(index)


def _seed_states(model) -> dict:
    """The dropout layers' random-generator states, which the weights files do not hold."""
    return {v.path: v.numpy().tolist() for v in model.variables
            if v.path.endswith("seed_generator_state")}


def _set_seed_states(model, states: dict) -> None:
    for v in model.variables:
        if v.path in states:
            v.assign(states[v.path])


def _json_copy(value):
    return json.loads(json.dumps(value))


def _metadata_or_none(folder) -> dict | None:
    try:
        return runfolder.read_metadata(folder)
    except LoczooError:
        return None


@contextmanager
def _sigterm_as_interrupt():
    """`kill` stops training like Ctrl-C (signal handlers exist only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def _deferred_interrupts():
    """Ctrl-C or SIGTERM during the block takes effect after it, so that the run folder and
    checkpoint are never left half-updated."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if any(previous[s] is not signal.SIG_IGN for s in pending):
        raise KeyboardInterrupt
