"""Recurrent Expansion against its own round 0 and the usual peers, on real data.

A thin command line over `sklearn_recursive.reproduce.real` (the same code as
``sklearn-recursive reproduce --sections real``): prints the suite's tables.
Needs the ``bench`` extra (statsmodels, aeon). About 25 minutes on 2 CPU cores.

    python benchmarks/bench_real.py [--quick] [--seeds 3] [--tasks diabetes wine]
        [--models "RE defaults" "sklearn MLP"]

A long run splits over processes (or machines), each with its own seeds, then
merges into one table:

    python benchmarks/bench_real.py --first-seed 0 --seeds 2 --save a.pkl
    python benchmarks/bench_real.py --first-seed 2 --seeds 1 --save b.pkl
    python benchmarks/bench_real.py --combine a.pkl b.pkl
"""

from sklearn_recursive.reproduce import real
from sklearn_recursive.reproduce._suite import command_line

if __name__ == "__main__":
    command_line(real, real.RealConfig, doc=__doc__)
