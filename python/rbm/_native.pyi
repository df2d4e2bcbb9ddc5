"""Type stubs of the compiled core (`rbm._native`, built from python/src/lib.rs)."""

from typing import Optional

import numpy as np
import numpy.typing as npt

F32_2D = npt.NDArray[np.float32]
F32_1D = npt.NDArray[np.float32]

class Fitter:
    def __init__(
        self,
        w: F32_2D,
        hbias: F32_1D,
        vbias: F32_1D,
        sigma: Optional[F32_1D],
        chain: Optional[F32_2D],
        n_rows: int,
        opts: dict[str, object],
    ) -> None: ...
    def run(self, x: F32_2D, max_updates: int, n_threads: int) -> Optional[float]: ...
    def done(self) -> bool: ...
    def params(self) -> tuple[F32_2D, F32_1D, F32_1D, Optional[F32_1D], F32_2D]: ...

class Tuner:
    def __init__(self, layers: list[tuple[F32_2D, F32_1D, F32_1D]], cw: F32_2D, cb: F32_1D, batch: int) -> None: ...
    def steps(self, x: F32_2D, y: list[int], start: int, end: int, lr: float) -> float: ...
    def predict_proba(self, x: F32_2D) -> F32_2D: ...
    def params(self) -> tuple[list[tuple[F32_2D, F32_1D, F32_1D]], F32_2D, F32_1D]: ...

def free_energy(w: F32_2D, hbias: F32_1D, vbias: F32_1D, sigma: Optional[F32_1D], x: F32_2D) -> npt.NDArray[np.float64]: ...
def propup(w: F32_2D, hbias: F32_1D, vbias: F32_1D, sigma: Optional[F32_1D], x: F32_2D) -> F32_2D: ...
def gibbs(w: F32_2D, hbias: F32_1D, vbias: F32_1D, sigma: Optional[F32_1D], x: F32_2D, seed: int) -> F32_2D: ...
def sample(
    w: F32_2D, hbias: F32_1D, vbias: F32_1D, sigma: Optional[F32_1D], init: F32_2D, steps: int, seed: int, n_threads: int
) -> F32_2D: ...
def log_likelihood(
    w: F32_2D,
    hbias: F32_1D,
    vbias: F32_1D,
    sigma: Optional[F32_1D],
    x: F32_2D,
    base: F32_1D,
    estimator: str,
    seed: int,
    n_threads: int,
) -> str: ...
def load_model(path: str) -> tuple[F32_2D, F32_1D, F32_1D, Optional[F32_1D], dict[str, str]]: ...
def save_model(
    path: str, w: F32_2D, hbias: F32_1D, vbias: F32_1D, sigma: Optional[F32_1D], metadata: dict[str, str]
) -> None: ...
