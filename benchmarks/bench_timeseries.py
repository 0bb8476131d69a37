"""Time-series members of Recurrent Expansion against MiniRocket and the usual peers.

A thin command line over `sklearn_recursive.reproduce.timeseries` (the same
code as ``sklearn-recursive reproduce --sections timeseries``): prints the
suite's tables. Needs the ``bench`` extra (aeon, statsmodels). The full
setting is meant for a GPU; ``--quick`` runs on a CPU.

    python benchmarks/bench_timeseries.py [--quick] [--seeds 3] [--tasks GunPoint ACSF1]
        [--models "MiniRocket (aeon)" fcn rocket]

A long run splits over processes (or machines), each with its own seeds and its
own MiniRocket column for the time ratios, then merges into one table:

    python benchmarks/bench_timeseries.py --tasks ACSF1 --models "MiniRocket (aeon)" \
        inception --first-seed 0 --seeds 1 --save s0.pkl      # and s1.pkl, s2.pkl
    python benchmarks/bench_timeseries.py --combine s0.pkl s1.pkl s2.pkl
"""

from sklearn_recursive.reproduce import timeseries
from sklearn_recursive.reproduce._suite import command_line

if __name__ == "__main__":
    command_line(timeseries, timeseries.TimeSeriesConfig, doc=__doc__)
