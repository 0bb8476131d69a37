"""Time-series members of Recurrent Expansion against MiniRocket and the usual peers.

A thin command line over `sklearn_recursive.reproduce.timeseries` (the same
code as ``sklearn-recursive reproduce --sections timeseries``): prints the
suite's tables. Needs the ``bench`` extra (aeon, statsmodels). The full
setting is meant for a GPU; ``--quick`` runs on a CPU.

    python benchmarks/bench_timeseries.py [--quick] [--seeds 3] [--tasks GunPoint ACSF1]
        [--models "MiniRocket (aeon)" fcn rocket]
"""

from sklearn_recursive.reproduce import timeseries
from sklearn_recursive.reproduce._suite import command_line

if __name__ == "__main__":
    command_line(timeseries, timeseries.TimeSeriesConfig, doc=__doc__)
