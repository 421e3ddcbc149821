# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

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
