"""BernoulliRBM and GaussianBernoulliRBM: scikit-learn estimators on the Rust core.

Shapes: ``X`` is ``[n_samples, n_features]``; ``components_`` is
``[n_components, n_features]`` (the library's ``W`` transposed, as in
scikit-learn), ``intercept_hidden_`` ``[n_components]``,
``intercept_visible_`` ``[n_features]``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _native


def _threads(n_jobs, weights=None):
    """Worker threads: n_jobs, or cores + 1 + n_jobs below -1; for None or -1,
    all cores, but one for models of under 100,000 weights, whose minibatches
    are too short to share (results do not depend on the count)."""
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == -1:
        return 1 if weights is not None and weights < 100_000 else cores
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else int(n_jobs))


def _check_unit_range(X):
    """ValueError naming the first value of X outside [0, 1], where binary units need their values."""
    bad = np.argwhere((X < 0) | (X > 1))
    if bad.size:
        r, c = bad[0]
        raise ValueError(
            "X[%d, %d] = %r lies outside [0, 1], where binary (Bernoulli) visible units "
            "need their values; scale the data, or use GaussianBernoulliRBM" % (r, c, X[r, c])
        )


def _f32(X):
    """X as a C-contiguous float32 array (no copy when it already is one)."""
    return np.ascontiguousarray(X, dtype=np.float32)


class _RBMBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What both unit kinds share: training, features, sampling, files."""

    _visible = "bernoulli"

    @property
    def _n_features_out(self):
        """Feature names out: the class name and the hidden unit's index."""
        return self.components_.shape[0]

    def _check_values(self, X):
        """Unit-specific checks of finite X (ValueError with the reason)."""

    def _validate(self, X, reset):
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))
        self._check_values(X)
        return _f32(X)

    def _sigma(self):
        return None

    def _params(self):
        W = np.ascontiguousarray(self.components_.T, dtype=np.float32)
        return W, _f32(self.intercept_hidden_), _f32(self.intercept_visible_), self._sigma()

    def _init_params(self, n_features, rng):
        if self.init == "normal":
            # scikit-learn's: W ~ N(0, 0.01^2)
            W = rng.normal(0, 0.01, size=(self.n_components, n_features))
        elif self.init == "uniform":
            # the tutorial's: W ~ U(-a, a), a = 4 sqrt(6 / (n_hidden + n_visible))
            a = 4.0 * np.sqrt(6.0 / (self.n_components + n_features))
            W = rng.uniform(-a, a, size=(self.n_components, n_features))
        else:
            raise ValueError("init must be 'normal' or 'uniform', got %r" % (self.init,))
        self.components_ = W.astype(np.float32)
        self.intercept_hidden_ = np.zeros(self.n_components, dtype=np.float32)
        self.intercept_visible_ = np.zeros(n_features, dtype=np.float32)
        self.h_samples_ = None

    def _run(self, X, epochs, rng):
        """Trains on X (float32, checked) for `epochs` epochs from the current
        parameters, a minibatch per native call, so that Ctrl-C (raised
        between two calls) stops within one and leaves the estimator fitted
        with the parameters reached."""
        n = X.shape[0]
        batch = min(self.batch_size, n)
        opts = {
            "method": self.method,
            "k": int(self.k),
            "lr": float(self.learning_rate),
            "batch_size": int(batch),
            "epochs": int(epochs),
            "seed": int(rng.randint(np.iinfo(np.int32).max)),
            "momentum": float(self.momentum),
            "weight_decay": float(self.weight_decay),
            # the pseudo-likelihood costs a product per update: computed only to be printed
            "monitor": bool(self.verbose),
        }
        if self.n_chains is not None:
            opts["n_chains"] = int(self.n_chains)
        opts.update(self._extra_opts())
        chain = self.h_samples_
        if chain is not None and self.method == "pcd" and chain.shape[0] == (self.n_chains or batch):
            chain = _f32(chain)
        else:
            chain = None
        fitter = _native.Fitter(self._params(), chain, n, opts)
        threads, epoch, begin = _threads(self.n_jobs, X.shape[1] * self.n_components), 0, time.time()
        try:
            while not fitter.done():
                cost = fitter.run_epoch(X, threads)
                epoch += 1
                if self.verbose:
                    print(
                        "[%s] Iteration %d, %s = %.2f, time = %.2fs"
                        % (type(self).__name__, epoch, self._cost_name(), cost, time.time() - begin)
                    )
                    begin = time.time()
        finally:
            # after Ctrl-C too: the parameters reached, whole minibatches only
            (W, hb, vb, sigma), chain = fitter.params()
            self.components_ = np.ascontiguousarray(W.T)
            self.intercept_hidden_, self.intercept_visible_, self.h_samples_ = hb, vb, chain
            if sigma is not None:
                self.sigma_ = sigma

    def _extra_opts(self):
        return {}

    def _cost_name(self):
        return "pseudo-likelihood" if self.method == "pcd" else "reconstruction cross-entropy"

    def _start(self, X):
        """Checks the hyperparameters and the data of a first fit."""
        if self.method not in ("pcd", "cd"):
            raise ValueError("method must be 'pcd' or 'cd', got %r" % (self.method,))
        for name in ("n_components", "batch_size", "k"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError("%s must be an integer of at least 1, got %r" % (name, v))
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError("learning_rate must be a positive number, got %r" % (self.learning_rate,))
        X = self._validate(X, reset=True)
        self.random_state_ = check_random_state(self.random_state)
        return X

    def fit(self, X, y=None):
        """Fits the model to X ``[n_samples, n_features]`` for ``n_iter`` epochs.

        Returns
        -------
        self : the fitted estimator.
        """
        X = self._start(X)
        rng = self.random_state_
        self._init_params(X.shape[1], rng)
        self._fit_base(X)
        self._run(X, int(self.n_iter), rng)
        return self

    def partial_fit(self, X, y=None):
        """One epoch over X ``[n_samples, n_features]``, from the current fit
        (and its persistent chains), or from a fresh start.

        Returns
        -------
        self : the fitted estimator.
        """
        first = not hasattr(self, "components_")
        if first:
            X = self._start(X)
            self._init_params(X.shape[1], self.random_state_)
            self._fit_base(X)
        else:
            X = self._validate(X, reset=False)
        self._run(X, 1, self.random_state_)
        return self

    def transform(self, X):
        """The hidden units' probabilities p(h = 1 | v) ``[n_samples, n_components]``."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return _native.propup(self._params(), X)

    def _free_energy(self, X):
        return _native.free_energy(self._params(), X)

    def gibbs(self, v):
        """One Gibbs step v -> h -> v: visible samples ``[n_samples, n_features]``."""
        check_is_fitted(self)
        v = self._validate(v, reset=False)
        return _native.gibbs(self._params(), v, int(self.random_state_.randint(np.iinfo(np.int32).max)))

    def sample(self, n_samples, steps=1000, init=None):
        """``n_samples`` chains after ``steps`` Gibbs steps, started at ``init``
        ``[n_samples, n_features]`` (default: random visible states); returns
        the last step's visible means ``[n_samples, n_features]``."""
        check_is_fitted(self)
        rng = self.random_state_
        if init is None:
            init = self._random_visible(rng, n_samples)
        init = self._validate(init, reset=False)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        return _native.sample(self._params(), init, int(steps), seed, _threads(self.n_jobs))

    def log_likelihood(self, X, estimator="auto"):
        """The average log-likelihood of the rows of X, in nats per row, with
        its uncertainty: a dict with ``avg_ll`` and its bracket ``avg_ll_lo``,
        ``avg_ll_hi``, the ``estimator`` used ("exact", "ais", "raise"), and
        the estimator's diagnostics (for AIS: ``ais_ess``, the effective
        sample size; ``avg_ll_upper_95``; with "auto" on a large model,
        ``raise``: RAISE's conservative figure beside AIS's).

        ``estimator``: "auto" (exact when the smaller layer is small enough
        to enumerate, else AIS with RAISE), "exact", "ais" or "raise".
        """
        check_is_fitted(self)
        if estimator not in ("auto", "exact", "ais", "raise"):
            raise ValueError("estimator must be 'auto', 'exact', 'ais' or 'raise', got %r" % (estimator,))
        X = self._validate(X, reset=False)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        report = _native.log_likelihood(self._params(), X, _f32(self._base), estimator, seed, _threads(self.n_jobs))
        return json.loads(report)

    def save(self, path):
        """Writes the model as the command line's safetensors model file."""
        check_is_fitted(self)
        _native.save_model(os.fspath(path), self._params(), {"written_by": "rbm (Python)"})

    @classmethod
    def load(cls, path):
        """A fitted estimator from a model file (of `rbm train`, or ``save``)."""
        (W, hb, vb, sigma), meta = _native.load_model(os.fspath(path))
        if (sigma is not None) != (cls._visible == "gaussian"):
            kind = "Gaussian" if sigma is not None else "binary"
            raise ValueError("%s: a model of %s visible units; load it with the other class" % (path, kind))
        est = cls(n_components=W.shape[1])
        est.components_ = np.ascontiguousarray(W.T)
        est.intercept_hidden_, est.intercept_visible_, est.h_samples_ = hb, vb, None
        if sigma is not None:
            est.sigma_ = sigma
        est.n_features_in_ = W.shape[0]
        est.random_state_ = check_random_state(est.random_state)
        est._base = np.zeros(W.shape[0], dtype=np.float32) if sigma is None else vb.copy()
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class BernoulliRBM(_RBMBase):
    """Restricted Boltzmann machine with binary visible and hidden units,
    trained by PCD-k or CD-k: scikit-learn's ``BernoulliRBM``, with its
    parameter names and fitted attributes, on the library's engine.

    Parameters
    ----------
    n_components : int, default=256
        Hidden units.
    learning_rate : float, default=0.1
    batch_size : int, default=10
    n_iter : int, default=10
        Epochs of ``fit``.
    verbose : int, default=0
        Print each epoch's cost (PCD: the pseudo-likelihood; CD: the
        reconstruction cross-entropy) and time.
    random_state : int, RandomState instance or None, default=None
    method : {"pcd", "cd"}, default="pcd"
    k : int, default=1
        Gibbs steps per update.
    n_chains : int or None, default=None
        Persistent chains (PCD); None: one per minibatch row.
    momentum, weight_decay : float, default=0.0
        The training recipes of the command line's ``--momentum`` and ``--weight-decay``.
    init : {"normal", "uniform"}, default="normal"
        The weights' start: scikit-learn's N(0, 0.01^2), or the tutorial's
        U(-a, a), a = 4 sqrt(6 / (n_components + n_features)).
    n_jobs : int or None, default=None
        Threads (None: all cores). Results do not depend on it.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
    intercept_hidden_ : ndarray of shape (n_components,)
    intercept_visible_ : ndarray of shape (n_features,)
    h_samples_ : ndarray of shape (n_chains, n_components)
        The persistent chains' hidden states.
    n_features_in_ : int

    X must lie in [0, 1] (grey values are the probabilities of binary units).
    The last ``n_samples % batch_size`` rows take no part in an epoch.
    """

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        method="pcd",
        k=1,
        n_chains=None,
        momentum=0.0,
        weight_decay=0.0,
        init="normal",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.method = method
        self.k = k
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.init = init
        self.n_jobs = n_jobs

    def _check_values(self, X):
        _check_unit_range(X)

    def _fit_base(self, X):
        # the AIS base model's visible biases: smoothed base rates, logit((s + a) / (n + 2a)), a = 0.05 n
        n = X.shape[0]
        a = 0.05 * n
        p = (X.sum(axis=0, dtype=np.float64) + a) / (n + 2 * a)
        self._base = np.log(p / (1 - p)).astype(np.float32)

    def _random_visible(self, rng, n):
        return (rng.uniform(size=(n, self.n_features_in_)) < 0.5).astype(np.float32)

    def score_samples(self, X):
        """The pseudo-likelihood of each row ``[n_samples]``, as scikit-learn
        computes it: n_features * log sigm(F(v~) - F(v)), with v~ the row
        with one feature flipped. The feature is drawn from a hash of the
        row's values and ``random_state``, so a row scores the same alone,
        in any subset and in any order (scikit-learn draws by position)."""
        check_is_fitted(self)
        v = self._validate(X, reset=False)
        n, d = v.shape
        mult = check_random_state(self.random_state).randint(1, 2**31 - 1, size=d).astype(np.uint64)
        h = (v.view(np.uint32).astype(np.uint64) * mult).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(29)
        ind = (np.arange(n), (h % np.uint64(d)).astype(np.int64))
        v_ = v.copy()
        v_[ind] = 1 - v_[ind]
        fe, fe_ = self._free_energy(v), self._free_energy(v_)
        # log sigm(x) = -log(1 + e^-x) = -logaddexp(0, -x): no overflow
        return -v.shape[1] * np.logaddexp(0, -(fe_ - fe))


class GaussianBernoulliRBM(_RBMBase):
    """Restricted Boltzmann machine with real-valued (Gaussian) visible units
    and binary hidden units, the energy

        E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_ij (v_i / sigma_i) W_ij h_j - sum_j c_j h_j

    Parameters as :class:`BernoulliRBM`'s, and

    sigma : float, default=1.0
        The visible units' standard deviation at the start (and throughout,
        unless ``learn_sigma``). Standardise the data, or set sigma to its scale.
    learn_sigma : bool, default=False
        Learn each unit's sigma (on log sigma^2).

    Attributes as :class:`BernoulliRBM`'s, and ``sigma_`` ``[n_features]``.
    ``score_samples`` is the negative free energy -F(v): the log-density up
    to the constant log Z (``log_likelihood`` estimates it whole).
    """

    _visible = "gaussian"

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.001,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        method="pcd",
        k=1,
        n_chains=None,
        momentum=0.0,
        weight_decay=0.0,
        sigma=1.0,
        learn_sigma=False,
        init="normal",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.method = method
        self.k = k
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.sigma = sigma
        self.learn_sigma = learn_sigma
        self.init = init
        self.n_jobs = n_jobs

    def _sigma(self):
        return _f32(self.sigma_)

    def _init_params(self, n_features, rng):
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError("sigma must be a positive number, got %r" % (self.sigma,))
        super()._init_params(n_features, rng)
        self.sigma_ = np.full(n_features, self.sigma, dtype=np.float32)

    def _extra_opts(self):
        return {"learn_sigma": bool(self.learn_sigma)}

    def _cost_name(self):
        return "reconstruction error"

    def _fit_base(self, X):
        # the AIS base model: independent Gaussians at the data's means
        self._base = X.mean(axis=0).astype(np.float32)

    def _random_visible(self, rng, n):
        return (self.intercept_visible_ + self.sigma_ * rng.normal(size=(n, self.n_features_in_))).astype(np.float32)

    def score_samples(self, X):
        """The negative free energy -F(v) of each row ``[n_samples]``."""
        check_is_fitted(self)
        return -self._free_energy(self._validate(X, reset=False))
