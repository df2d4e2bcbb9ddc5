"""Type stubs of the estimators (rbm/_rbm.py, rbm/_dbn.py)."""

from os import PathLike
from typing import Any, Literal, Optional, Sequence, TypeVar, Union

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

ArrayLike = npt.ArrayLike
Seed = Union[int, np.random.RandomState, None]
_Self = TypeVar("_Self")

class _RBMBase(TransformerMixin, BaseEstimator):
    components_: npt.NDArray[np.float32]
    intercept_hidden_: npt.NDArray[np.float32]
    intercept_visible_: npt.NDArray[np.float32]
    h_samples_: Optional[npt.NDArray[np.float32]]
    n_features_in_: int
    def fit(self: _Self, X: ArrayLike, y: Any = None) -> _Self: ...
    def partial_fit(self: _Self, X: ArrayLike, y: Any = None) -> _Self: ...
    def transform(self, X: ArrayLike) -> npt.NDArray[np.float32]: ...
    def score_samples(self, X: ArrayLike) -> npt.NDArray[np.float64]: ...
    def gibbs(self, v: ArrayLike) -> npt.NDArray[np.float32]: ...
    def sample(self, n_samples: int, steps: int = 1000, init: Optional[ArrayLike] = None) -> npt.NDArray[np.float32]: ...
    def log_likelihood(self, X: ArrayLike, estimator: Literal["auto", "exact", "ais", "raise"] = "auto") -> dict[str, Any]: ...
    def save(self, path: Union[str, PathLike[str]]) -> None: ...
    @classmethod
    def load(cls: type[_Self], path: Union[str, PathLike[str]]) -> _Self: ...

class BernoulliRBM(_RBMBase):
    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.1,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: Seed = None,
        method: Literal["pcd", "cd"] = "pcd",
        k: int = 1,
        n_chains: Optional[int] = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        init: Literal["normal", "uniform"] = "normal",
        n_jobs: Optional[int] = None,
    ) -> None: ...

class GaussianBernoulliRBM(_RBMBase):
    sigma_: npt.NDArray[np.float32]
    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.001,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: Seed = None,
        method: Literal["pcd", "cd"] = "pcd",
        k: int = 1,
        n_chains: Optional[int] = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        sigma: float = 1.0,
        learn_sigma: bool = False,
        init: Literal["normal", "uniform"] = "normal",
        n_jobs: Optional[int] = None,
    ) -> None: ...

class DBNClassifier(ClassifierMixin, BaseEstimator):
    classes_: npt.NDArray[Any]
    coefs_: list[npt.NDArray[np.float32]]
    intercepts_: list[npt.NDArray[np.float32]]
    n_iter_: int
    loss_curve_: list[float]
    n_features_in_: int
    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (500, 500),
        *,
        pretrain_epochs: int = 10,
        pretrain_learning_rate: float = 0.01,
        k: int = 1,
        batch_size: int = 10,
        learning_rate: float = 0.1,
        max_iter: int = 30,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        visible: Literal["bernoulli", "gaussian"] = "bernoulli",
        verbose: int = 0,
        random_state: Seed = None,
        n_jobs: Optional[int] = None,
    ) -> None: ...
    def fit(self: _Self, X: ArrayLike, y: ArrayLike) -> _Self: ...
    def predict_proba(self, X: ArrayLike) -> npt.NDArray[np.float32]: ...
    def predict(self, X: ArrayLike) -> npt.NDArray[Any]: ...

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "DBNClassifier"]
