"""
Forecasting a real series with windows and a multiverse
=======================================================

The monthly international airline passengers, 1949-1960 (the "airline" series that
ships with ``aeon``; ``pip install aeon``). ``make_windows`` cuts the series into
windows of the last 12 months with the next month as the target, and a
`MultiverseRE` with an MLP, a 1-D CNN and a GRU forecasts one step ahead on the last
two years, which it never saw. A naive forecast (the same month a year before) is
the baseline to beat.
"""

import matplotlib.pyplot as plt
import numpy as np
from aeon.datasets import load_airline

from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor
from sklearn_recursive.timeseries import make_windows

series = np.log(np.asarray(load_airline(), dtype=float))  # log: the seasonality grows
test_months = 24
mean, std = series[:-test_months].mean(), series[:-test_months].std()
scaled = (series - mean) / std  # scaled with the training part only

# %%
# Windows of 12 months, the next month as target: X is (n, 1, 12).
X, y = make_windows(scaled, window=12, horizon=1)
X_train, y_train = X[:-test_months], y[:-test_months]
X_test, y_test = X[-test_months:], y[-test_months:]
print("windows:", X_train.shape, X_test.shape)

# %%
inner = RecurrentExpansionRegressor(n_rounds=4, max_epochs=150, lr=3e-3, random_state=0)
mv = MultiverseRE(inner, members=["mlp", "cnn", "gru"]).fit(X_train, y_train)


def passengers(values):
    return np.exp(np.asarray(values) * std + mean)


forecast = passengers(mv.predict(X_test))
truth = passengers(y_test)
naive = passengers(X_test[:, 0, 0])  # the value 12 months before the target month
for name, pred in {"multiverse": forecast, "seasonal naive": naive}.items():
    print(f"{name:>15}: mean absolute error {np.mean(np.abs(pred - truth)):.1f} "
          "thousand passengers")
print("best_round_:", mv.best_round_)

# %%
months = np.arange(len(series))
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(months, np.exp(series), "k-", lw=1, label="passengers (thousands)")
ax.plot(months[-test_months:], forecast, "o-", ms=3, label="multiverse, one step ahead")
ax.plot(months[-test_months:], naive, "--", label="seasonal naive")
ax.set(xlabel="month since Jan 1949", ylabel="passengers (thousands)")
ax.legend()
fig.tight_layout()
plt.show()
