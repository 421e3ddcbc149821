"""Feature columns a metrics source never fills.

Traces have no disk or network I/O, so those columns are all NaN in the
training rows. HistGradientBoosting cannot bin a column without a value,
so the tree models note such columns at fit time and feed them as a
constant 0, in training and in scoring alike.
"""

import numpy as np


def find(X):
    """Boolean mask of the columns of X that hold no value at all."""
    return np.isnan(X).all(axis=0)


def fill(X, empty):
    """X with the ``empty`` columns set to 0 (a copy only when needed)."""
    if empty.any():
        X = X.copy()
        X[:, empty] = 0.0
    return X
