"""DBNClassifier: a deep belief network as a scikit-learn classifier.

Greedy layer-wise pretraining (each layer an RBM trained by CD-k on the
layer below's p(h | v)), then the unrolled sigmoid network with a softmax
layer fine-tuned by minibatch SGD on the cross-entropy, as the tutorial
series' DBN.py does. The prediction rule, per layer h = sigm(x W_i +
hbias_i), then softmax(h W_c + b_c).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _native
from ._rbm import BernoulliRBM, GaussianBernoulliRBM, _check_unit_range, _f32, _threads


class DBNClassifier(ClassifierMixin, BaseEstimator):
    """Deep belief network classifier.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(500, 500)
    pretrain_epochs : int, default=10
        Pretraining epochs per layer (DBN.py: 100).
    pretrain_learning_rate : float, default=0.01
    k : int, default=1
        Gibbs steps of pretraining's CD-k.
    batch_size : int, default=10
    learning_rate : float, default=0.1
        Fine-tuning's learning rate.
    max_iter : int, default=30
        Fine-tuning epochs (DBN.py: up to 1,000, stopped early).
    dropout : float, default=0.0
        Fine-tuning's dropout: the probability of dropping a hidden unit in
        a step (inverted dropout: the units kept are scaled by 1 / (1 - p),
        so predictions use the weights as they are).
    input_dropout : float, default=0.0
        The same for the input units.
    visible : {"bernoulli", "gaussian"}, default="bernoulli"
        The first layer's visible units: binary (X in [0, 1]) or Gaussian
        (any real X, standardised per feature before pretraining).
    verbose : int, default=0
    random_state : int, RandomState instance or None, default=None
    n_jobs : int or None, default=None
        Threads of pretraining and fine-tuning (None or -1: all cores; one
        for networks of under 100,000 weights). Results do not depend on
        the number.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_ : list of ndarray, the weights of each layer ``[n_in, n_out]``, the classifier's last
    intercepts_ : list of ndarray, the biases of each layer, the classifier's last
    n_iter_ : int, fine-tuning epochs run
    loss_curve_ : list of float, each fine-tuning epoch's mean cross-entropy
    n_features_in_ : int
    """

    def __init__(
        self,
        hidden_layer_sizes=(500, 500),
        *,
        pretrain_epochs=10,
        pretrain_learning_rate=0.01,
        k=1,
        batch_size=10,
        learning_rate=0.1,
        max_iter=30,
        dropout=0.0,
        input_dropout=0.0,
        visible="bernoulli",
        verbose=0,
        random_state=None,
        n_jobs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_learning_rate = pretrain_learning_rate
        self.k = k
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.visible = visible
        self.verbose = verbose
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _inputs(self, X, reset):
        """X checked (and standardised, for Gaussian units) as float32."""
        if not reset:
            X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        else:
            self._mean = X.mean(axis=0) if self.visible == "gaussian" else None
            self._scale = X.std(axis=0) if self.visible == "gaussian" else None
            if self._scale is not None:
                self._scale[self._scale == 0] = 1.0
        if self.visible == "gaussian":
            return _f32((X - self._mean) / self._scale)
        _check_unit_range(X)
        return _f32(X)

    def fit(self, X, y):
        """Pretrains the layers on X ``[n_samples, n_features]``, then fine-tunes on the labels y.

        Returns
        -------
        self : the fitted classifier.
        """
        if self.visible not in ("bernoulli", "gaussian"):
            raise ValueError("visible must be 'bernoulli' or 'gaussian', got %r" % (self.visible,))
        sizes = list(self.hidden_layer_sizes)
        if not sizes or any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ValueError("hidden_layer_sizes must be sizes of at least 1, got %r" % (self.hidden_layer_sizes,))
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        X = self._inputs(X, reset=True)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y has one class only (%r); a classifier needs two or more" % (self.classes_[0],))
        rng = check_random_state(self.random_state)
        n = X.shape[0]
        batch = min(self.batch_size, n)
        layers, h = [], X
        for i, size in enumerate(sizes):
            cls = GaussianBernoulliRBM if i == 0 and self.visible == "gaussian" else BernoulliRBM
            lr = self.pretrain_learning_rate * (0.1 if cls is GaussianBernoulliRBM else 1.0)
            rbm = cls(
                size, learning_rate=lr, batch_size=batch, n_iter=self.pretrain_epochs, method="cd", k=self.k,
                random_state=rng.randint(np.iinfo(np.int32).max), n_jobs=self.n_jobs, verbose=self.verbose,
                init="uniform" if cls is BernoulliRBM else "normal",
            ).fit(h)
            W = np.ascontiguousarray(rbm.components_.T)
            if cls is GaussianBernoulliRBM:
                # p(h | v) = sigm(c + (v / sigma) W): the unrolled layer's weights are W / sigma
                W = np.ascontiguousarray(W / rbm.sigma_[:, None])
            layers.append((W, _f32(rbm.intercept_hidden_), _f32(rbm.intercept_visible_)))
            h = rbm.transform(h)
        n_classes = len(self.classes_)
        cw = np.zeros((sizes[-1], n_classes), dtype=np.float32)
        cb = np.zeros(n_classes, dtype=np.float32)
        drop = (float(self.input_dropout), float(self.dropout), int(rng.randint(np.iinfo(np.int32).max)))
        tuner = _native.Tuner(layers, cw, cb, batch, drop)
        y_list = [int(c) for c in y_enc]
        batches = n // batch
        threads = _threads(self.n_jobs, sum(W.size for W, _, _ in layers))
        self.loss_curve_, self.n_iter_ = [], 0
        try:
            for epoch in range(self.max_iter):
                loss = 0.0
                # 250 minibatches a call: Ctrl-C is seen between calls
                for start in range(0, batches, 250):
                    end = min(start + 250, batches)
                    loss += tuner.steps(X, y_list, start, end, float(self.learning_rate), threads)
                self.loss_curve_.append(loss / batches)
                self.n_iter_ = epoch + 1
                if self.verbose:
                    print("[DBNClassifier] fine-tuning epoch %d, loss = %.5f" % (epoch + 1, loss / batches))
        finally:
            # after Ctrl-C too: the network as it stands
            layers, cw, cb = tuner.params()
            self.coefs_ = [w for w, _, _ in layers] + [cw]
            self.intercepts_ = [b for _, b, _ in layers] + [cb]
            self._vbias = [v for _, _, v in layers]
        return self

    def predict_proba(self, X):
        """Class probabilities ``[n_samples, n_classes]``, in the order of ``classes_``."""
        check_is_fitted(self)
        X = self._inputs(X, reset=False)
        layers = list(zip(self.coefs_[:-1], self.intercepts_[:-1], self._vbias))
        return _native.Tuner(layers, self.coefs_[-1], self.intercepts_[-1], 1).predict_proba(X)

    def predict(self, X):
        """The most probable class of each row ``[n_samples]``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
