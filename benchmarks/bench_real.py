"""Recurrent Expansion against its own round 0 and the usual peers, on real data.

A thin command line over `sklearn_recursive.reproduce.real` (the same code as
``sklearn-recursive reproduce --sections real``): prints the suite's tables.

    python benchmarks/bench_real.py [--quick] [--seeds 3] [--tasks diabetes wine]
        [--models "RE defaults" "sklearn MLP"]
"""

import argparse
import dataclasses
import sys

from sklearn_recursive.reproduce import real
from sklearn_recursive.reproduce._report import Progress


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, fewer rounds and epochs")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--tasks", nargs="+", default=None)
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    config = real.RealConfig.quick(args.device) if args.quick else real.RealConfig(
        device=args.device)
    changes = {k: v for k, v in dict(seeds=args.seeds, tasks=args.tasks and tuple(args.tasks),
                                     models=args.models and tuple(args.models)).items()
               if v is not None}
    config = dataclasses.replace(config, **changes)
    print(f"{real.__doc__.splitlines()[0]}\nSetting: {config.describe()}\n")
    results = real.run(config, Progress(sys.stderr))
    for title, lines in real.tables(config, results):
        print(f"{title}\n")
        print("\n".join(lines), "\n", flush=True)


if __name__ == "__main__":
    main()
