"""rbm.BernoulliRBM against scikit-learn's BernoulliRBM, side by side in one run.

1. MNIST (the copy in data/mnist), 500 components, PCD-1, scikit-learn's
   batch size (10) and learning rate (0.1), the same epochs: fit time, and
   the pseudo-likelihood of held-out test images, computed for both models by
   the same function (the exact pseudo-likelihood: every feature flipped in
   turn, not one at random), besides each library's own score_samples.
2. scikit-learn's example pipeline (RBM features, then logistic
   regression, on the 8x8 digits nudged by one pixel in four directions):
   test accuracy with each library's RBM, same hyperparameters.

Usage: python python/benchmarks/vs_sklearn.py [--train N] [--epochs E] [--repeat R]
"""

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve
from sklearn import datasets, linear_model, metrics
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SkRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import minmax_scale

import rbm

ROOT = Path(__file__).resolve().parents[2]


def mnist(name, n):
    raw = gzip.open(ROOT / "data" / "mnist" / name).read()
    return (np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 784)[:n] / 255.0).astype(np.float32)


def exact_pseudo_likelihood(W, b, c, X):
    """Mean over rows of sum_i log p(v_i | v_-i), W [n_features, n_components]:
    F(v with i flipped) - F(v) = -d_i b_i - sum_j [softplus(a_j + d_i W_ij) - softplus(a_j)],
    d_i = 1 - 2 v_i, a = c + v W."""
    W, b, c, X = (np.asarray(t, dtype=np.float64) for t in (W, b, c, X))
    total = 0.0
    for v in X:
        a = c + v @ W
        d = 1.0 - 2.0 * v
        dF = -d * b - (np.logaddexp(0, a[None, :] + d[:, None] * W) - np.logaddexp(0, a)[None, :]).sum(axis=1)
        total += -np.logaddexp(0, -dF).sum()  # log sigm(dF)
    return total / len(X)


def nudge(X, Y):
    # scikit-learn's example: the 8x8 images shifted by 1 pixel in each direction
    directions = [
        [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
    ]
    shift = lambda x, w: convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()
    X = np.concatenate([X] + [np.apply_along_axis(shift, 1, X, np.array(w)) for w in directions])
    return X, np.concatenate([Y for _ in range(5)], axis=0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", type=int, default=20000, help="MNIST training images")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--held-out", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3, help="fits per library, in turns")
    a = p.parse_args()
    X, T = mnist("train-images-idx3-ubyte.gz", a.train), mnist("t10k-images-idx3-ubyte.gz", a.held_out)
    params = dict(n_components=500, learning_rate=0.1, batch_size=10, n_iter=a.epochs, random_state=0)
    print("1. MNIST: %d training images, %d epochs, %s" % (a.train, a.epochs, params))
    # Each library fits `repeat` times, in turns, so that a busy second core
    # slows them alike; the best time counts (every fit of one library gives
    # the same model: the seed is fixed).
    makers = [("scikit-learn", lambda: SkRBM(**params)), ("rbm", lambda: rbm.BernoulliRBM(**params)),
              ("rbm, 1 thread", lambda: rbm.BernoulliRBM(**params, n_jobs=1))]
    times = {name: [] for name, _ in makers}
    models = {}
    for _ in range(a.repeat):
        for name, make in makers:
            model = make()
            t = time.time()
            model.fit(X)
            times[name].append(time.time() - t)
            models[name] = model
    rows = []
    for name, _ in makers:
        model = models[name]
        best, median = min(times[name]), float(np.median(times[name]))
        pl = exact_pseudo_likelihood(model.components_.T, model.intercept_visible_, model.intercept_hidden_, T)
        own = model.score_samples(T).mean()
        rows.append((name, best, median))
        print("   %-14s fit %5.2f s (median %5.2f s of %d)   exact pseudo-likelihood %8.2f   own score_samples %8.2f"
              % (name, best, median, a.repeat, pl, own))
    sk_best, sk_median = rows[0][1], rows[0][2]
    for name, best, median in rows[1:]:
        print("   %s: %.1fx faster fit than scikit-learn (best against best; %.1fx median against median)"
              % (name, sk_best / best, sk_median / median))

    print("2. scikit-learn's example pipeline: RBM features + logistic regression, nudged 8x8 digits")
    digits = datasets.load_digits()
    Xd, Yd = nudge(np.asarray(digits.data, "float32"), digits.target)
    Xd = minmax_scale(Xd, feature_range=(0, 1))
    X_train, X_test, Y_train, Y_test = train_test_split(Xd, Yd, test_size=0.2, random_state=0)
    for name, cls in [("scikit-learn", SkRBM), ("rbm", rbm.BernoulliRBM)]:
        model = cls(n_components=100, learning_rate=0.06, n_iter=10, random_state=0)
        pipe = Pipeline([("rbm", model), ("logistic", linear_model.LogisticRegression(C=6000, max_iter=1000))])
        t = time.time()
        pipe.fit(X_train, Y_train)
        secs = time.time() - t
        acc = metrics.accuracy_score(Y_test, pipe.predict(X_test))
        print("   %-14s accuracy %.4f   (pipeline fit %.1f s)" % (name, acc, secs))


if __name__ == "__main__":
    main()
