"""tf.distribute strategies for ``loczoo train --strategy``: ``default`` (one device),
``mirrored`` (all GPUs of this machine, or its CPU) and ``multiworker`` (several machines,
each with its GPUs or CPU, synchronous data-parallel training).

Batch size: ``config.batch_size`` is the GLOBAL batch of one training step, whatever the number
of replicas. Every worker builds the same data stream (each element a batch of
``config.batch_size`` seeded by its index) and keeps its own slice of every batch (tf.data
auto-sharding by DATA after rebatching), so the replicas see different examples and together
exactly the batch a single process sees; gradients are averaged over the global batch and
batch normalisation uses the statistics of the global batch. Training on N workers therefore
gives the single-process result (up to floating-point rounding), and a run may be resumed
with another number of workers. The price: every worker computes (simulates) the whole
batch and uses 1/N of it, so more workers speed up the network, not the data pipeline. The
global batch must divide evenly over the replicas. Gradient clipping applies to the summed
gradient, as in one process (Keras alone clips each replica's share). Entries with dropout
draw one mask per replica, so they match a single process statistically, not exactly.

Running on a cluster (``--strategy multiworker``)
-------------------------------------------------
Start the same command on every node (worker), with the same ``--out`` path, and give each
node a ``TF_CONFIG`` environment variable naming all workers and this node's place::

    TF_CONFIG='{"cluster": {"worker": ["node1:12345", "node2:12345"]},
                "task": {"type": "worker", "index": 0}}'      # index 1 on node2
    loczoo train deep_storm --out runs/ds --strategy multiworker --steps-per-epoch 400

- Worker 0 is the chief: only it writes ``--out`` (run folder, checkpoint, logs, curves);
  the others write theirs to a temporary folder that is deleted at the end. ``--out`` may be
  local to the chief, but ``--resume`` needs it on a shared file system (every worker reads
  the checkpoint).
- Data: the simulator needs nothing; ``--data`` files must be readable at the same path on
  every node (shared file system or a copy per node).
- Each worker uses all GPUs it sees (restrict with ``CUDA_VISIBLE_DEVICES``), or its CPU.
- Training starts when all workers have joined. If a worker stops (Ctrl-C, SIGTERM, a
  crash), the others stop a few seconds later with an error; the chief's run folder holds the
  last completed epoch: start all workers again with ``--resume`` (any number of workers).
- Under SLURM without ``TF_CONFIG``, ``TF_CONFIG`` is derived from the job step (``srun``):
  tasks in block order over ``SLURM_STEP_NODELIST``, ports 8888 + ``SLURM_LOCALID``. Use one
  task per node; a batch script::

    #SBATCH --nodes=2 --ntasks-per-node=1 --gpus-per-node=4
    srun loczoo train deep_storm --out runs/ds --strategy multiworker --epochs 100
"""

from __future__ import annotations

import json
import os

from loczoo.errors import LoczooError

STRATEGIES = ("default", "mirrored", "multiworker")
SLURM_PORT_BASE = 8888

TF_CONFIG_FORM = ('{"cluster": {"worker": ["host:port", ...]}, '
                  '"task": {"type": "worker", "index": I}}')


def make_strategy(name: str):
    """The tf.distribute strategy called ``name``. Create it before any TensorFlow op runs:
    a multi-worker strategy configures the runtime at program start."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise LoczooError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        derived = slurm_tf_config(os.environ)
        if derived is None:
            raise LoczooError(f"--strategy multiworker needs the TF_CONFIG environment variable "
                              f"on every worker, e.g. {TF_CONFIG_FORM} (or a SLURM job step)")
        os.environ["TF_CONFIG"] = json.dumps(derived)
    check_tf_config(os.environ["TF_CONFIG"])
    try:
        return _multi_worker_strategy()
    except RuntimeError as err:  # "Collective ops must be configured at program startup"
        raise LoczooError(f"cannot start the multi-worker strategy: {err} (create it before "
                          f"any TensorFlow work)") from None


def strategy_name(strategy) -> str:
    """The ``--strategy`` name of a tf.distribute strategy (else its class name)."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return "default"
    return type(strategy).__name__


def check_tf_config(text: str) -> dict:
    """The parsed TF_CONFIG, or a LoczooError saying what is wrong with it."""
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as err:
        raise LoczooError(f"TF_CONFIG is not JSON ({err}); expected {TF_CONFIG_FORM}") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise LoczooError(f"TF_CONFIG needs 'cluster' and 'task'; expected {TF_CONFIG_FORM}")
    for job in ("chief", "worker"):
        hosts = cluster.get(job, [])
        if not isinstance(hosts, list) or not all(isinstance(h, str) and ":" in h
                                                  for h in hosts):
            raise LoczooError(f"TF_CONFIG cluster.{job} must be a list of 'host:port' strings, "
                              f"got {hosts!r}")
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown or not cluster.get("worker") or len(cluster.get("chief", [])) > 1:
        raise LoczooError(f"TF_CONFIG cluster must list 'worker's (and at most one 'chief'), "
                          f"got {sorted(cluster)}")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise LoczooError(f"TF_CONFIG task {task!r} is not in the cluster {cluster!r}")
    return tf_config


def slurm_tf_config(environ) -> dict | None:
    """TF_CONFIG for a SLURM job step (``srun``): all tasks of the step are workers, in block
    order over the step's nodes, on ports ``SLURM_PORT_BASE + SLURM_LOCALID``. None outside
    a job step."""
    needed = ("SLURM_PROCID", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE")
    if not all(name in environ for name in needed):
        return None
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (
        expand_hostlist,
        expand_tasks_per_node,
    )

    hosts = expand_hostlist(environ["SLURM_STEP_NODELIST"])
    counts = expand_tasks_per_node(environ["SLURM_STEP_TASKS_PER_NODE"])
    workers = [f"{host}:{SLURM_PORT_BASE + local}" for host, count in zip(hosts, counts)
               for local in range(count)]
    rank = int(environ["SLURM_PROCID"])
    own = environ.get("SLURMD_NODENAME")
    if rank >= len(workers) or (own and not workers[rank].startswith(f"{own}:")):
        raise LoczooError(f"SLURM task {rank} on {own} does not follow block order over "
                          f"{hosts}; set TF_CONFIG yourself")
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": rank}}


def worker_info(strategy) -> tuple[int, int]:
    """(this worker's index, number of workers); the chief is index 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0, 1
    jobs = resolver.cluster_spec().as_dict()
    workers = len(jobs.get("worker", [])) + len(jobs.get("chief", []))
    if resolver.task_type == "chief":
        return 0, workers
    # With a separate chief, the workers count from 1.
    return resolver.task_id + (1 if "chief" in jobs else 0), workers


def distribute_dataset(dataset, strategy):
    """``dataset`` for ``strategy``: shard by DATA (slices of each global batch) rather than by
    files, which generated streams do not have."""
    import tensorflow as tf

    if strategy.num_replicas_in_sync == 1 and worker_info(strategy)[1] == 1:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def synchronize_batch_norm(model) -> None:
    """Batch normalisation over the global batch, not each replica's slice, so that results
    do not depend on the number of replicas (call before training starts)."""
    import keras

    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True


def clip_after_all_reduce(optimizer) -> None:
    """Make ``optimizer`` clip the summed gradient, as a single process does, at the cost of
    one more all-reduce per step. Keras 3.15 clips each replica's share before summing the
    shares, which, with N replicas, lets the sum grow to N times the clip norm (DECODE clips
    every step)."""
    import tensorflow as tf

    if not (optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue):
        return
    clip_share = optimizer._clip_gradients

    def clip_sum(grads):
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context else 1
        if replicas == 1:
            return clip_share(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
        clipped = list(grads)
        # Each replica passes on 1/N of the clipped sum; Keras then sums the replicas.
        for i, g in zip(present, clip_share(total)):
            clipped[i] = g / replicas
        return clipped

    optimizer._clip_gradients = clip_sum


def _multi_worker_strategy():
    import tensorflow as tf

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy with the ``reduce`` Keras 3.15's ``fit`` expects: it
        reduces a whole (x, y) batch at once and asks for ``axis=0`` on scalar logs, which the
        TensorFlow class refuses with more than one worker (keras-team/keras#20585)."""

        def reduce(self, reduce_op, value, axis):
            def one(v):
                scalar = self.experimental_local_results(v)[0].shape.rank == 0
                return super(MultiWorkerStrategy, self).reduce(
                    reduce_op, v, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerStrategy()
