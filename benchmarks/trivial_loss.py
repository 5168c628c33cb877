"""The loss an all-zero prediction scores on an entry's validation stream: the level a training
run must get below before its network has learned anything.

    python benchmarks/trivial_loss.py dsir [--set imaging.density_per_um2=[2.0,2.0]] [--batches 10]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("entry")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1, help="the training run's --seed")
    args = parser.parse_args()

    import numpy as np

    from loczoo.config import with_overrides
    from loczoo.registry import get_entry

    entry = get_entry(args.entry)
    config = with_overrides(entry.config_cls.default(), args.set)
    config = entry.prepare_config(config, None, args.seed)
    loss = entry.make_loss(config)
    values = [float(loss(y, np.zeros(y.shape, np.float32)))
              for _, y in entry.make_dataset(config, "validation", seed=args.seed)
              .take(args.batches)]
    print(f"{' '.join([args.entry, *args.set])}: all-zero prediction, validation loss "
          f"{np.mean(values):.5f} over {args.batches} batches")


if __name__ == "__main__":
    main()
