"""rbm: restricted Boltzmann machines and deep belief networks with
scikit-learn's habits, on the Rust library of the same name.

>>> from rbm import BernoulliRBM
>>> model = BernoulliRBM(n_components=64, n_iter=5, random_state=0).fit(X)  # doctest: +SKIP
>>> features = model.transform(X)                                          # doctest: +SKIP
"""

from ._dbn import DBNClassifier
from ._rbm import BernoulliRBM, GaussianBernoulliRBM

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "DBNClassifier"]
