"""The Python package: scikit-learn's estimator checks, exact answers on tiny
models, the command line's model files, Ctrl-C, and bad input."""

import os
import pickle
import signal
import subprocess
import threading
import time
import _thread
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator
from sklearn.utils.validation import validate_data

from rbm import BernoulliRBM, DBNClassifier, GaussianBernoulliRBM

ROOT = Path(__file__).resolve().parents[2]

class SquashedBernoulliRBM(BernoulliRBM):
    """BernoulliRBM behind the logistic function, for scikit-learn's checks:
    they feed values outside [0, 1] (3 * uniform, normal + 100, ...), which
    binary units refuse with a ValueError, as the package promises (tested
    below). Mapped into (0, 1) first, the same inputs take every other path
    of the estimator's code unchanged."""

    def _validate(self, X, reset):
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))
        return super()._validate(0.5 * (1 + np.tanh(X / 2)), reset=False)


def binary_data(n=60, d=12, seed=0):
    return (np.random.RandomState(seed).rand(n, d) < 0.3).astype(np.float64)


def test_scikit_learns_estimator_checks_pass():
    check_estimator(SquashedBernoulliRBM(n_components=8, n_iter=3, random_state=0))
    check_estimator(GaussianBernoulliRBM(n_components=8, n_iter=3, random_state=0))
    dbn = DBNClassifier(hidden_layer_sizes=(16,), pretrain_epochs=2, max_iter=20, visible="gaussian", random_state=0)
    check_estimator(dbn)


def test_the_range_exempt_properties_hold_on_binary_data():
    X = binary_data()
    a = BernoulliRBM(n_components=5, n_iter=3, random_state=1).fit(X)
    b = BernoulliRBM(n_components=5, n_iter=3, random_state=1).fit(X)
    # idempotent fit, n_features_in_, one sample, one feature, subsets, 1-D input refused
    assert np.array_equal(a.components_, b.components_) and a.n_features_in_ == 12
    assert np.array_equal(a.transform(X[:7]), a.transform(X)[:7])
    assert np.array_equal(a.score_samples(X[3:9]), a.score_samples(X)[3:9])
    assert BernoulliRBM(n_components=2, n_iter=2).fit(X[:1]).transform(X[:1]).shape == (1, 2)
    assert BernoulliRBM(n_components=2, n_iter=2).fit(X[:, :1]).transform(X[:, :1]).shape == (60, 2)
    with pytest.raises(ValueError, match="2D array"):
        a.transform(X[0])
    with pytest.raises(ValueError, match="features"):
        a.transform(X[:, :5])


def test_bad_input_raises_value_error_with_the_reason():
    X = binary_data()
    with pytest.raises(ValueError, match=r"X\[2, 3\] = .*outside \[0, 1\].*GaussianBernoulliRBM"):
        bad = X.copy()
        bad[2, 3] = 1.5
        BernoulliRBM(n_components=3).fit(bad)
    for v in (np.nan, np.inf):
        bad = X.copy()
        bad[1, 1] = v
        with pytest.raises(ValueError, match="NaN|infinity"):
            GaussianBernoulliRBM(n_components=3).fit(bad)
    with pytest.raises(ValueError, match="method"):
        BernoulliRBM(method="pcd5").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        BernoulliRBM(n_components=0).fit(X)


def exact_log_likelihood(model, X):
    """log p(v) by enumerating every hidden state (n_components <= 12): from
    the fitted attributes alone, in float64."""
    W = model.components_.T.astype(np.float64)
    b, c = model.intercept_visible_.astype(np.float64), model.intercept_hidden_.astype(np.float64)
    nh = W.shape[1]
    H = ((np.arange(2**nh)[:, None] >> np.arange(nh)) & 1).astype(np.float64)
    # log Z = logsumexp_h [c.h + sum_i softplus(b_i + (W h)_i)]
    terms = H @ c + np.logaddexp(0, b + H @ W.T).sum(axis=1)
    log_z = np.logaddexp.reduce(terms)
    free = -X @ b - np.logaddexp(0, c + X @ W).sum(axis=1)
    return (-free - log_z).mean()


def test_log_likelihood_is_exact_on_a_tiny_model_and_training_raises_it():
    X = binary_data(200, 10, seed=3)
    start = BernoulliRBM(n_components=6, n_iter=1, learning_rate=1e-9, random_state=0).fit(X)
    model = BernoulliRBM(n_components=6, n_iter=30, learning_rate=0.05, random_state=0).fit(X)
    report = model.log_likelihood(X, estimator="exact")
    assert report["estimator"] == "exact"
    # the library sums in f64 from f32 parameters: 1e-4 nats covers the rounding
    assert abs(report["avg_ll"] - exact_log_likelihood(model, X)) < 1e-4
    assert report["avg_ll"] > exact_log_likelihood(start, X) + 0.5
    # AIS on the same model: within 0.1 nat of the exact figure (10 visible units, easy)
    assert abs(model.log_likelihood(X, estimator="ais")["avg_ll"] - report["avg_ll"]) < 0.1
    # an enumeration past 2^25 states is refused, not started
    with pytest.raises(ValueError, match="2\\^30 states"):
        BernoulliRBM(n_components=30, n_iter=1).fit(binary_data(20, 40)).log_likelihood(binary_data(5, 40), "exact")


def test_pickle_partial_fit_gibbs_and_sample():
    X = binary_data()
    m = BernoulliRBM(n_components=4, n_iter=2, random_state=0).fit(X)
    back = pickle.loads(pickle.dumps(m))
    assert np.array_equal(back.transform(X), m.transform(X))
    before = m.components_.copy()
    m.partial_fit(X)
    assert not np.array_equal(before, m.components_) and m.h_samples_.shape == (10, 4)
    v = m.gibbs(X[:5])
    assert v.shape == (5, 12) and set(np.unique(v)) <= {0.0, 1.0}
    s = m.sample(3, steps=20)
    assert s.shape == (3, 12) and np.all((s >= 0) & (s <= 1))
    g = GaussianBernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(np.random.RandomState(0).randn(50, 4))
    assert g.sigma_.shape == (4,) and g.gibbs(np.zeros((2, 4))).shape == (2, 4)


def cli():
    exe = ROOT / "target" / "release" / "rbm"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "rbm-cli"], cwd=ROOT, check=True)
    return str(exe)


def test_a_model_of_the_command_line_gives_the_same_free_energies_and_features(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--hidden", "20", "--epochs", "1", "--train-size", "1000", "--out", str(out)]
    subprocess.run([cli(), *args, "--data", str(ROOT / "data" / "mnist")], check=True, capture_output=True)
    model = BernoulliRBM.load(out / "model.safetensors")
    # the features the command line writes for the test images
    feats = tmp_path / "f.npy"
    run = [cli(), "features", "--model", str(out / "model.safetensors"), "--out", str(feats)]
    subprocess.run([*run, "--data", str(ROOT / "data" / "mnist")], check=True, capture_output=True)
    import gzip

    raw = gzip.open(ROOT / "data" / "mnist" / "t10k-images-idx3-ubyte.gz").read()
    X = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 784)[:500] / 255.0
    assert np.allclose(model.transform(X), np.load(feats)[:500], atol=1e-6)
    # free energies: the library's against the formula on the file's tensors
    from safetensors.numpy import load_file

    t = load_file(out / "model.safetensors")
    W, b, c = (t[k].astype(np.float64) for k in ("W", "vbias", "hbias"))
    want = -X @ b - np.logaddexp(0, c + X @ W).sum(axis=1)
    assert np.allclose(model._free_energy(X.astype(np.float32)), want, rtol=1e-5, atol=1e-3)
    # and back: a model saved here is read by the command line
    model.save(tmp_path / "py.safetensors")
    again = [cli(), "features", "--model", str(tmp_path / "py.safetensors"), "--out", str(tmp_path / "g.npy")]
    subprocess.run([*again, "--data", str(ROOT / "data" / "mnist")], check=True, capture_output=True)
    assert np.array_equal(np.load(tmp_path / "g.npy"), np.load(feats))


def test_ctrl_c_during_fit_leaves_a_usable_estimator():
    # about 15 s of training, interrupted after 0.5 s as Ctrl-C would (Python's
    # own SIGINT handler installed: interrupt_main does nothing without it)
    X = (np.random.RandomState(0).rand(4000, 400) < 0.2).astype(np.float32)
    m = BernoulliRBM(n_components=300, n_iter=200, random_state=0)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    started = time.time()
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            m.fit(X)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.time() - started < 5, "the interrupt was not taken promptly"
    # fitted with the parameters reached: finite, moved from the start, usable
    assert np.all(np.isfinite(m.components_)) and m.transform(X[:3]).shape == (3, 300)
    m.partial_fit(X[:100])
    assert np.all(np.isfinite(m.components_))


def test_dbn_classifier_learns_the_shipped_digits():
    data = np.loadtxt(ROOT / "data" / "digits" / "digits.csv", delimiter=",", skiprows=1)
    X, y = data[:, :-1] / 16.0, data[:, -1].astype(int)
    clf = DBNClassifier(hidden_layer_sizes=(100,), pretrain_epochs=5, max_iter=20, random_state=0)
    clf.fit(X[:1200], y[:1200])
    assert clf.score(X[1200:], y[1200:]) > 0.9
    p = clf.predict_proba(X[1200:1210])
    assert p.shape == (10, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert clf.n_iter_ == 20 and len(clf.coefs_) == 2


def test_dbn_classifiers_dropout_thins_the_steps_alike_on_any_thread_count():
    data = np.loadtxt(ROOT / "data" / "digits" / "digits.csv", delimiter=",", skiprows=1)
    X, y = data[:, :-1] / 16.0, data[:, -1].astype(int)
    kw = dict(hidden_layer_sizes=(100,), pretrain_epochs=3, max_iter=20, random_state=0)
    fits = [DBNClassifier(dropout=0.5, input_dropout=0.2, n_jobs=j, **kw).fit(X[:1200], y[:1200]) for j in (1, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(fits[0].coefs_, fits[1].coefs_))
    assert fits[0].score(X[1200:], y[1200:]) > 0.85
    plain = DBNClassifier(**kw).fit(X[:1200], y[:1200])
    assert not np.array_equal(plain.coefs_[0], fits[0].coefs_[0])
    with pytest.raises(ValueError, match="dropout"):
        DBNClassifier(dropout=1.0, **kw).fit(X[:100], y[:100])
