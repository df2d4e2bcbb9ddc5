//! `rbm._native`: the Rust library as seen from Python. Thin glue only: the
//! estimators (`rbm/__init__.py`) check their inputs and keep their fitted
//! attributes as NumPy arrays; this module trains, transforms, samples and
//! estimates on them, releasing the GIL while it works.
//!
//! Arrays come in as C-contiguous float32 (the Python side converts them)
//! and go out as new NumPy arrays. Shapes follow the library: `W` is
//! `[n_visible, n_hidden]` (scikit-learn's `components_` is its transpose).

use numpy::prelude::*;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rbm::dbn::{Dbn, Dropout};
use rbm::estimate::{evaluate, evaluate_gaussian, Estimator, EvalOptions};
use rbm::finetune::FineTuner;
use rbm::gaussian::GaussianRbm;
use rbm::train::{Method, TrainConfig, Trainer, Visible};
use rbm::{Rbm, RbmError, RowMatrix, Stream};
use std::collections::HashMap;

fn value_error(e: RbmError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn slice2<'a>(a: &'a PyReadonlyArray2<f32>) -> PyResult<&'a [f32]> {
    a.as_slice().map_err(|_| PyValueError::new_err("expected a C-contiguous float32 array"))
}

fn slice1<'a>(a: &'a PyReadonlyArray1<f32>) -> PyResult<&'a [f32]> {
    a.as_slice().map_err(|_| PyValueError::new_err("expected a contiguous float32 array"))
}

/// A model as the Python side passes it: the tuple (W `[n_visible,
/// n_hidden]`, hbias, vbias, sigma or None).
#[derive(FromPyObject)]
struct Model<'py>(
    PyReadonlyArray2<'py, f32>,
    PyReadonlyArray1<'py, f32>,
    PyReadonlyArray1<'py, f32>,
    Option<PyReadonlyArray1<'py, f32>>,
);

impl Model<'_> {
    /// The RBM, and its Gaussian form when sigma is given.
    fn unpack(&self) -> PyResult<(Rbm, Option<GaussianRbm>)> {
        let rbm = rbm_of(&self.0, &self.1, &self.2)?;
        let g = gaussian_of(&rbm, &self.3)?;
        Ok((rbm, g))
    }
}

/// An RBM from `w` `[n_visible, n_hidden]`, `hbias`, `vbias`.
fn rbm_of(w: &PyReadonlyArray2<f32>, hbias: &PyReadonlyArray1<f32>, vbias: &PyReadonlyArray1<f32>) -> PyResult<Rbm> {
    let (nv, nh) = (w.shape()[0], w.shape()[1]);
    Rbm::from_params(nv, nh, slice2(w)?.to_vec(), slice1(hbias)?.to_vec(), slice1(vbias)?.to_vec()).map_err(value_error)
}

/// The Gaussian form of `rbm` when `sigma` is given (the weights copied only then).
fn gaussian_of(rbm: &Rbm, sigma: &Option<PyReadonlyArray1<f32>>) -> PyResult<Option<GaussianRbm>> {
    match sigma {
        Some(s) => Ok(Some(GaussianRbm::new(rbm.clone(), slice1(s)?.to_vec()).map_err(value_error)?)),
        None => Ok(None),
    }
}

/// The Python side's model tuple (W, hbias, vbias, sigma or None) of an RBM.
type ModelArrays<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Option<Bound<'py, PyArray1<f32>>>,
);

fn model_arrays(py: Python<'_>, rbm: Rbm, sigma: Option<Vec<f32>>) -> PyResult<ModelArrays<'_>> {
    let nh = rbm.n_hidden;
    Ok((
        array2(py, rbm.w, nh)?,
        rbm.hbias.into_pyarray(py),
        rbm.vbias.into_pyarray(py),
        sigma.map(|s| s.into_pyarray(py)),
    ))
}

fn array2<'py>(py: Python<'py>, v: Vec<f32>, cols: usize) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let rows = v.len() / cols.max(1);
    v.into_pyarray(py).reshape([rows, cols]).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// A training run: the library's [`Trainer`] over rows passed in at each call.
#[pyclass(module = "rbm._native")]
struct Fitter {
    trainer: Trainer,
    n_visible: usize,
}

#[pymethods]
impl Fitter {
    /// Starts from `model` (with sigma: Gaussian visible units)
    /// for `n_rows` training rows; `opts` holds the recipe: method ("pcd" or
    /// "cd"), k, lr, batch_size, epochs, seed, n_chains, momentum,
    /// weight_decay, learn_sigma, monitor (the pseudo-likelihood, PCD's cost). `chain` `[chains, n_hidden]` carries
    /// persistent chains over from an earlier run.
    #[new]
    #[pyo3(signature = (model, chain, n_rows, opts))]
    fn new(
        model: Model<'_>,
        chain: Option<PyReadonlyArray2<f32>>,
        n_rows: usize,
        opts: &Bound<'_, PyDict>,
    ) -> PyResult<Self> {
        let (rbm, g) = model.unpack()?;
        let mut cfg = TrainConfig::default();
        let get = |k: &str| opts.get_item(k).ok().flatten();
        if let Some(m) = get("method") {
            cfg.method = match m.extract::<String>()?.as_str() {
                "pcd" => Method::Pcd,
                "cd" => Method::Cd,
                other => return Err(PyValueError::new_err(format!("method: 'pcd' or 'cd', got {other:?}"))),
            };
        }
        macro_rules! set {
            ($($name:ident),*) => {$(
                if let Some(v) = get(stringify!($name)) {
                    cfg.$name = v.extract()?;
                }
            )*};
        }
        set!(k, lr, batch_size, epochs, seed, momentum, weight_decay, learn_sigma, monitor);
        if let Some(c) = get("n_chains") {
            cfg.chains = c.extract()?;
        }
        (cfg.n_hidden, cfg.train_size) = (rbm.n_hidden, n_rows);
        if g.is_some() {
            cfg.visible = Visible::Gaussian;
        }
        let checked = cfg.check(n_rows).map_err(value_error)?;
        let n_visible = rbm.n_visible;
        let mut trainer = match g {
            Some(g) => Trainer::new_gaussian(&g, checked),
            None => Trainer::new(&rbm, checked),
        }
        .map_err(value_error)?;
        if let Some(c) = chain {
            trainer.set_chain_hidden(slice2(&c)?).map_err(value_error)?;
        }
        Ok(Fitter { trainer, n_visible })
    }

    /// Runs the rest of the epoch over `x` `[n_rows, n_visible]` on
    /// `n_threads` threads, without the GIL, in chunks of about 20 ms with a
    /// look at Python's signals between them (Ctrl-C: KeyboardInterrupt, the
    /// parameters kept as the last whole minibatch left them); returns the
    /// epoch's mean cost.
    fn run_epoch(&mut self, py: Python<'_>, x: PyReadonlyArray2<f32>, n_threads: usize) -> PyResult<f64> {
        let values = slice2(&x)?;
        if x.shape()[1] != self.n_visible {
            return Err(PyValueError::new_err(format!(
                "rows of {} values; the model has {}",
                x.shape()[1],
                self.n_visible
            )));
        }
        let rows = RowMatrix::from_checked(values, self.n_visible);
        let mut chunk = 1;
        loop {
            let t = std::time::Instant::now();
            let trainer = &mut self.trainer;
            if let Some(cost) = py.allow_threads(|| trainer.run(&rows, chunk, n_threads)).map_err(value_error)? {
                return Ok(cost);
            }
            py.check_signals()?;
            // the next chunk: about 20 ms of minibatches, at most doubling
            let per = t.elapsed().as_secs_f64() / chunk as f64;
            chunk = ((0.02 / per.max(1e-9)) as usize).clamp(1, 2 * chunk);
        }
    }

    /// Whether every epoch has run.
    fn done(&self) -> bool {
        self.trainer.done()
    }

    /// ((W `[n_visible, n_hidden]`, hbias, vbias, sigma or None), chain `[chains, n_hidden]`).
    fn params<'py>(&mut self, py: Python<'py>) -> PyResult<(ModelArrays<'py>, Bound<'py, PyArray2<f32>>)> {
        let (rbm, sigma) = match self.trainer.gaussian_model() {
            Some(g) => (g.rbm, Some(g.sigma)),
            None => (self.trainer.rbm(), None),
        };
        let nh = rbm.n_hidden;
        Ok((model_arrays(py, rbm, sigma)?, array2(py, self.trainer.chain_hidden(), nh)?))
    }
}

/// F(v) of each row of `x`: binary visible units, or Gaussian with `sigma`.
#[pyfunction]
#[pyo3(signature = (model, x))]
fn free_energy<'py>(
    py: Python<'py>,
    model: Model<'py>,
    x: PyReadonlyArray2<f32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let ((rbm, g), v) = (model.unpack()?, slice2(&x)?);
    let f: Vec<f64> = match g {
        Some(g) => py.allow_threads(|| g.free_energy(v)),
        None => py.allow_threads(|| rbm.free_energy(v).into_iter().map(f64::from).collect()),
    };
    Ok(f.into_pyarray(py))
}

/// p(h = 1 | v) of each row of `x`, `[n, n_hidden]`.
#[pyfunction]
#[pyo3(signature = (model, x))]
fn propup<'py>(py: Python<'py>, model: Model<'py>, x: PyReadonlyArray2<f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ((rbm, g), v) = (model.unpack()?, slice2(&x)?);
    let nh = rbm.n_hidden;
    let h = match g {
        Some(g) => py.allow_threads(|| g.prob_h_given_v(v).into_iter().map(|p| p as f32).collect()),
        None => py.allow_threads(|| rbm.propup(v).mean),
    };
    array2(py, h, nh)
}

/// One Gibbs step v -> h -> v from the rows of `x`, drawn with `seed`:
/// the visible samples (binary, or real with Gaussian units).
#[pyfunction]
#[pyo3(signature = (model, x, seed))]
fn gibbs<'py>(
    py: Python<'py>,
    model: Model<'py>,
    x: PyReadonlyArray2<f32>,
    seed: u64,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ((rbm, g), v) = (model.unpack()?, slice2(&x)?);
    let (nv, mut rng) = (rbm.n_visible, Stream::new(seed, 0));
    let out = match g {
        Some(g) => {
            let h = rbm.sample_h_given_v(&scaled(v, &g.sigma), &mut rng).sample;
            g.sample_v_given_h(&h, &mut rng)
        }
        None => rbm.gibbs_vhv(v, &mut rng).1.sample,
    };
    array2(py, out, nv)
}

/// v / sigma, row by row: the input Gaussian units give the hidden layer.
fn scaled(v: &[f32], sigma: &[f32]) -> Vec<f32> {
    v.chunks_exact(sigma.len()).flat_map(|row| row.iter().zip(sigma).map(|(x, s)| x / s)).collect()
}

/// Chains started at `init` `[n, n_visible]` after `steps` Gibbs steps: the
/// visible means of the last step (of p(v|h) with Gaussian units).
#[pyfunction]
#[pyo3(signature = (model, init, steps, seed, n_threads))]
fn sample<'py>(
    py: Python<'py>,
    model: Model<'py>,
    init: PyReadonlyArray2<f32>,
    steps: usize,
    seed: u64,
    n_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ((rbm, g), v) = (model.unpack()?, slice2(&init)?);
    let (nv, sigma) = (rbm.n_visible, g.map(|g| g.sigma));
    let rows = py.allow_threads(|| {
        rbm::engine::sample_rows(&rbm, sigma.as_deref(), v, 1, steps.max(1), seed, n_threads, |_| {})
    });
    array2(py, rows.into_iter().next().unwrap_or_default(), nv)
}

/// The average log-likelihood of the rows of `x` by `estimator` ("auto",
/// "exact", "ais", "raise"), as the library's report in JSON; `base` is the
/// AIS base model's visible biases (binary) or the data's means (Gaussian).
#[pyfunction]
#[pyo3(signature = (model, x, base, estimator, seed, n_threads))]
fn log_likelihood<'py>(
    py: Python<'py>,
    model: Model<'py>,
    x: PyReadonlyArray2<f32>,
    base: PyReadonlyArray1<f32>,
    estimator: &str,
    seed: u64,
    n_threads: usize,
) -> PyResult<String> {
    let ((rbm, g), v, base) = (model.unpack()?, slice2(&x)?, slice1(&base)?);
    let mut opts = EvalOptions::default();
    opts.estimator = match estimator {
        "auto" => Estimator::Auto,
        "exact" => Estimator::Exact,
        "ais" => Estimator::Ais,
        "raise" => Estimator::Raise,
        other => {
            return Err(PyValueError::new_err(format!("estimator: 'auto', 'exact', 'ais' or 'raise', got {other:?}")))
        }
    };
    opts.seed = seed;
    let units = rbm.n_hidden.min(rbm.n_visible);
    if opts.estimator == Estimator::Exact && g.is_none() && units > rbm::estimate::EXACT_MAX_UNITS {
        return Err(PyValueError::new_err(format!(
            "estimator='exact' enumerates 2^{units} states (the smaller layer); at most 2^{}: use 'ais' or 'auto'",
            rbm::estimate::EXACT_MAX_UNITS
        )));
    }
    let report = match g {
        Some(g) => py.allow_threads(|| evaluate_gaussian(&g, v, base, &opts, n_threads)).map_err(value_error)?,
        None => py.allow_threads(|| evaluate(&rbm, v, base, &opts, n_threads)),
    };
    serde_json::to_string(&report).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// A DBN's fine-tuning: the network and the library's [`FineTuner`].
#[pyclass(module = "rbm._native")]
struct Tuner {
    net: Dbn,
    tuner: FineTuner,
    batch: usize,
}

#[pymethods]
impl Tuner {
    /// The unrolled network of `layers` (each (W, hbias, vbias)) with
    /// classifier `cw` `[n_last, n_classes]`, `cb`, for minibatches of
    /// `batch`; `dropout` = (input rate, hidden rate, seed) thins every step.
    #[new]
    #[pyo3(signature = (layers, cw, cb, batch, dropout = (0.0, 0.0, 0)))]
    fn new(
        layers: Vec<(PyReadonlyArray2<f32>, PyReadonlyArray1<f32>, PyReadonlyArray1<f32>)>,
        cw: PyReadonlyArray2<f32>,
        cb: PyReadonlyArray1<f32>,
        batch: usize,
        dropout: (f32, f32, u64),
    ) -> PyResult<Self> {
        let rbms = layers.iter().map(|(w, h, v)| rbm_of(w, h, v)).collect::<PyResult<Vec<_>>>()?;
        let mut net = Dbn::new(rbms, cb.shape()[0]).map_err(value_error)?;
        if cw.shape() != [net.layers.last().expect("a layer").n_hidden, net.n_classes()] {
            return Err(PyValueError::new_err("classifier weights of the wrong shape"));
        }
        (net.classifier_w, net.classifier_b) = (slice2(&cw)?.to_vec(), slice1(&cb)?.to_vec());
        let dropout = Dropout::new(dropout.0, dropout.1, dropout.2).map_err(value_error)?;
        let tuner = FineTuner::new(&net, batch.max(1)).with_dropout(dropout);
        Ok(Tuner { net, tuner, batch: batch.max(1) })
    }

    /// SGD over the minibatches `start..end` of `x` `[n, n_in]` with labels
    /// `y` at rate `lr`, on `n_threads` threads, without the GIL; returns the
    /// summed minibatch losses.
    #[allow(clippy::too_many_arguments)]
    fn steps(
        &mut self,
        py: Python<'_>,
        x: PyReadonlyArray2<f32>,
        y: Vec<usize>,
        start: usize,
        end: usize,
        lr: f32,
        n_threads: usize,
    ) -> PyResult<f64> {
        let (v, nv, b) = (slice2(&x)?, x.shape()[1], self.batch);
        if nv != self.net.layers[0].n_visible {
            return Err(PyValueError::new_err(format!(
                "rows of {nv} values; the network takes {}",
                self.net.layers[0].n_visible
            )));
        }
        if end * b > y.len() || end * b * nv > v.len() {
            return Err(PyValueError::new_err("minibatches past the end of the data"));
        }
        let Tuner { net, tuner, .. } = self;
        let fill = |i: usize, xb: &mut [f32], yb: &mut [usize]| -> rbm::Result<()> {
            let m = start + i;
            xb.copy_from_slice(&v[m * b * nv..(m + 1) * b * nv]);
            yb.copy_from_slice(&y[m * b..(m + 1) * b]);
            Ok(())
        };
        py.allow_threads(|| tuner.steps(net, end.saturating_sub(start), lr, n_threads.max(1), &fill))
            .map_err(value_error)
    }

    /// Class probabilities `[n, n_classes]` of the rows of `x`.
    fn predict_proba<'py>(&self, py: Python<'py>, x: PyReadonlyArray2<f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let v = slice2(&x)?;
        let p = py.allow_threads(|| self.net.predict_proba(v));
        array2(py, p, self.net.n_classes())
    }

    /// ([(W, hbias, vbias) per layer], classifier W, classifier b).
    #[allow(clippy::type_complexity)]
    fn params<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Vec<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>)>,
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray1<f32>>,
    )> {
        let layers = self
            .net
            .layers
            .iter()
            .map(|r| {
                Ok((
                    array2(py, r.w.clone(), r.n_hidden)?,
                    r.hbias.clone().into_pyarray(py),
                    r.vbias.clone().into_pyarray(py),
                ))
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok((
            layers,
            array2(py, self.net.classifier_w.clone(), self.net.n_classes())?,
            self.net.classifier_b.clone().into_pyarray(py),
        ))
    }
}

/// Reads a model file written by `rbm train` (or [`save_model`]): ((W,
/// hbias, vbias, sigma or None), metadata).
#[pyfunction]
fn load_model(py: Python<'_>, path: std::path::PathBuf) -> PyResult<(ModelArrays<'_>, HashMap<String, String>)> {
    let (rbm, meta) = rbm::modelfile::load_model(&path).map_err(value_error)?;
    let (rbm, sigma) = if meta.get("visible").map(String::as_str) == Some("gaussian") {
        let (g, _) = rbm::modelfile::load_gaussian_model(&path).map_err(value_error)?;
        (g.rbm, Some(g.sigma))
    } else {
        (rbm, None)
    };
    Ok((model_arrays(py, rbm, sigma)?, meta))
}

/// Writes a model file that `rbm eval`, `rbm sample` and the other commands read.
#[pyfunction]
fn save_model(path: std::path::PathBuf, model: Model<'_>, metadata: HashMap<String, String>) -> PyResult<()> {
    let (rbm, g) = model.unpack()?;
    match g {
        Some(g) => rbm::modelfile::save_gaussian_model(&path, &g, None, metadata),
        None => rbm::modelfile::save_model(&path, &rbm, metadata),
    }
    .map_err(value_error)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Fitter>()?;
    m.add_class::<Tuner>()?;
    m.add_function(wrap_pyfunction!(free_energy, m)?)?;
    m.add_function(wrap_pyfunction!(propup, m)?)?;
    m.add_function(wrap_pyfunction!(gibbs, m)?)?;
    m.add_function(wrap_pyfunction!(sample, m)?)?;
    m.add_function(wrap_pyfunction!(log_likelihood, m)?)?;
    m.add_function(wrap_pyfunction!(load_model, m)?)?;
    m.add_function(wrap_pyfunction!(save_model, m)?)?;
    Ok(())
}
