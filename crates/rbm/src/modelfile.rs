//! Files: atomic writes, and the model file (safetensors: tensors `W`
//! `[n_visible, n_hidden]`, `hbias`, `vbias`, f32 little-endian, with the
//! training configuration as metadata).

use crate::error::{RbmError, Result};
use crate::Rbm;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The model file format version written into the metadata.
pub const FORMAT_VERSION: &str = "1";

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. A crash at any moment
/// leaves either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| RbmError::io(path, std::io::Error::other("not a file name")))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(RbmError::io(path, e));
    }
    Ok(())
}

/// The safetensors bytes of `tensors` (name, shape, f32 values) with
/// `metadata`: an 8-byte little-endian header length, the JSON header
/// (metadata first, then tensors, keys sorted, padded with spaces to a
/// multiple of 8 bytes), then the tensors' bytes in the given order. Written
/// here rather than by the safetensors crate so that the same model always
/// gives the same bytes (the crate writes its metadata in hash order).
pub fn safetensors_bytes(tensors: &[(&str, Vec<usize>, &[f32])], metadata: HashMap<String, String>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let meta: std::collections::BTreeMap<String, String> = metadata.into_iter().collect();
    header.insert("__metadata__".into(), serde_json::to_value(meta).expect("strings serialise"));
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "tensor {name}: shape and values disagree");
        let end = offset + 4 * values.len();
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    // serde_json's Map is a BTreeMap here: keys come out sorted.
    let mut json = serde_json::to_string(&header).expect("header serialises");
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    for (_, _, values) in tensors {
        out.extend(values.iter().flat_map(|x| x.to_le_bytes()));
    }
    out
}

/// Writes `rbm` as a safetensors file with `metadata` (plus the format
/// version and shapes), atomically.
pub fn save_model(path: &Path, rbm: &Rbm, mut metadata: HashMap<String, String>) -> Result<()> {
    metadata.insert("format".into(), "rbm".into());
    metadata.insert("format_version".into(), FORMAT_VERSION.into());
    metadata.insert("n_visible".into(), rbm.n_visible.to_string());
    metadata.insert("n_hidden".into(), rbm.n_hidden.to_string());
    let bytes = safetensors_bytes(
        &[
            ("W", vec![rbm.n_visible, rbm.n_hidden], &rbm.w),
            ("hbias", vec![rbm.n_hidden], &rbm.hbias),
            ("vbias", vec![rbm.n_visible], &rbm.vbias),
        ],
        metadata,
    );
    write_atomic(path, &bytes)
}

/// Writes a Gaussian-Bernoulli model: the tensors of [`save_model`] plus
/// `sigma` `[n_visible]`, metadata `"visible": "gaussian"`, and when the data
/// were standardised, `data_mean` and `data_std` `[n_visible]` (the model
/// then sees (v - data_mean) / data_std).
pub fn save_gaussian_model(
    path: &Path,
    model: &crate::gaussian::GaussianRbm,
    standardize: Option<&crate::data::Standardize>,
    mut metadata: HashMap<String, String>,
) -> Result<()> {
    let rbm = &model.rbm;
    metadata.insert("format".into(), "rbm".into());
    metadata.insert("format_version".into(), FORMAT_VERSION.into());
    metadata.insert("n_visible".into(), rbm.n_visible.to_string());
    metadata.insert("n_hidden".into(), rbm.n_hidden.to_string());
    metadata.insert("visible".into(), "gaussian".into());
    let nv = rbm.n_visible;
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
        ("W", vec![nv, rbm.n_hidden], &rbm.w),
        ("hbias", vec![rbm.n_hidden], &rbm.hbias),
        ("vbias", vec![nv], &rbm.vbias),
        ("sigma", vec![nv], &model.sigma),
    ];
    if let Some(z) = standardize {
        tensors.push(("data_mean", vec![nv], &z.mean));
        tensors.push(("data_std", vec![nv], &z.std));
    }
    write_atomic(path, &safetensors_bytes(&tensors, metadata))
}

/// Reads a Gaussian-Bernoulli model file written by [`save_gaussian_model`]:
/// the model and its standardisation, if any. A binary model file is refused.
pub fn load_gaussian_model(path: &Path) -> Result<(crate::gaussian::GaussianRbm, Option<crate::data::Standardize>)> {
    let bytes = std::fs::read(path).map_err(|e| RbmError::io(path, e))?;
    let (rbm, meta) = parse_model(path, &bytes)?;
    if meta.get("visible").map(String::as_str) != Some("gaussian") {
        return Err(RbmError::model_file(
            path,
            "not a Gaussian-Bernoulli model (its metadata lacks visible = gaussian)",
        ));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| RbmError::model_file(path, e.to_string()))?;
    let nv = rbm.n_visible;
    let sigma = tensor(path, &st, "sigma", &[nv])?;
    let model = crate::gaussian::GaussianRbm::new(rbm, sigma).map_err(|e| RbmError::model_file(path, e.to_string()))?;
    let standardize = match st.tensor("data_mean") {
        Ok(_) => Some(crate::data::Standardize {
            mean: tensor(path, &st, "data_mean", &[nv])?,
            std: tensor(path, &st, "data_std", &[nv])?,
        }),
        Err(_) => None,
    };
    Ok((model, standardize))
}

/// One f32 tensor of a parsed file, checked for its dtype and shape.
pub fn tensor(path: &Path, st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st.tensor(name).map_err(|_| RbmError::model_file(path, format!("tensor `{name}` is missing")))?;
    if t.dtype() != Dtype::F32 {
        return Err(RbmError::model_file(path, format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
    }
    if t.shape() != shape {
        return Err(RbmError::model_file(
            path,
            format!("tensor `{name}` has shape {:?}, expected {shape:?}", t.shape()),
        ));
    }
    let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(RbmError::model_file(
            path,
            format!("tensor `{name}` holds a non-finite value ({}) at index {i}", v[i]),
        ));
    }
    Ok(v)
}

/// Reads a model file: the RBM and the file's metadata.
pub fn load_model(path: &Path) -> Result<(Rbm, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| RbmError::io(path, e))?;
    parse_model(path, &bytes)
}

/// Parses model-file bytes (see [`load_model`]); `path` is for messages.
pub fn parse_model(path: &Path, bytes: &[u8]) -> Result<(Rbm, HashMap<String, String>)> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| RbmError::model_file(path, format!("not a valid safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| RbmError::model_file(path, format!("not a valid safetensors file: {e}")))?;
    let w = st.tensor("W").map_err(|_| RbmError::model_file(path, "tensor `W` is missing"))?;
    if w.shape().len() != 2 || w.shape()[0] == 0 || w.shape()[1] == 0 {
        return Err(RbmError::model_file(
            path,
            format!("tensor `W` has shape {:?}, expected [n_visible, n_hidden]", w.shape()),
        ));
    }
    let (nv, nh) = (w.shape()[0], w.shape()[1]);
    let w = tensor(path, &st, "W", &[nv, nh])?;
    let hbias = tensor(path, &st, "hbias", &[nh])?;
    let vbias = tensor(path, &st, "vbias", &[nv])?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    check_format_version(path, &metadata)?;
    let rbm = Rbm::from_params(nv, nh, w, hbias, vbias).map_err(|e| RbmError::model_file(path, e.to_string()))?;
    Ok((rbm, metadata))
}

/// Refuses a file written in a newer format than this build reads (a file
/// without a version is of version 1).
fn check_format_version(path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
    let Some(v) = metadata.get("format_version") else { return Ok(()) };
    let ours: u32 = FORMAT_VERSION.parse().expect("a number");
    match v.parse::<u32>() {
        Ok(n) if n <= ours => Ok(()),
        Ok(n) => Err(RbmError::model_file(
            path,
            format!("format version {n} is newer than this build reads (up to {ours}); upgrade rbm to read it"),
        )),
        Err(_) => Err(RbmError::model_file(path, format!("format version `{v}` is not a number"))),
    }
}

/// Writes a deep belief network as one safetensors file: per layer i (from
/// the bottom, 0-based) `layers.{i}.W` `[n_in, n_out]`, `layers.{i}.hbias`,
/// `layers.{i}.vbias`; the classifier's `classifier.W` `[n_last, n_classes]`
/// and `classifier.b`; metadata `format` = "rbm-dbn", its version, the layer
/// count and sizes, beside the caller's.
pub fn save_dbn(path: &Path, dbn: &crate::dbn::Dbn, mut metadata: HashMap<String, String>) -> Result<()> {
    metadata.insert("format".into(), "rbm-dbn".into());
    metadata.insert("format_version".into(), FORMAT_VERSION.into());
    metadata.insert("n_layers".into(), dbn.layers.len().to_string());
    metadata.insert("sizes".into(), dbn_sizes(dbn));
    let mut tensors = Vec::new();
    push_dbn_tensors(&mut tensors, "", dbn);
    write_named(path, &tensors, metadata)
}

/// "n_in,n_1,...,n_L,n_classes"
fn dbn_sizes(dbn: &crate::dbn::Dbn) -> String {
    let sizes: Vec<String> = std::iter::once(dbn.layers[0].n_visible)
        .chain(dbn.layers.iter().map(|r| r.n_hidden))
        .chain(std::iter::once(dbn.n_classes()))
        .map(|n| n.to_string())
        .collect();
    sizes.join(",")
}

type Named<'a> = Vec<(String, Vec<usize>, &'a [f32])>;

/// `{prefix}layers.{i}.W`, `.hbias`, `.vbias` of each RBM of `layers`.
fn push_layer_tensors<'a>(tensors: &mut Named<'a>, prefix: &str, layers: &'a [Rbm]) {
    for (i, rbm) in layers.iter().enumerate() {
        tensors.push((format!("{prefix}layers.{i}.W"), vec![rbm.n_visible, rbm.n_hidden], &rbm.w));
        tensors.push((format!("{prefix}layers.{i}.hbias"), vec![rbm.n_hidden], &rbm.hbias));
        tensors.push((format!("{prefix}layers.{i}.vbias"), vec![rbm.n_visible], &rbm.vbias));
    }
}

/// A DBN's layers and `{prefix}classifier.W`, `{prefix}classifier.b`.
fn push_dbn_tensors<'a>(tensors: &mut Named<'a>, prefix: &str, dbn: &'a crate::dbn::Dbn) {
    push_layer_tensors(tensors, prefix, &dbn.layers);
    let last = dbn.layers.last().expect("a layer").n_hidden;
    tensors.push((format!("{prefix}classifier.W"), vec![last, dbn.n_classes()], &dbn.classifier_w));
    tensors.push((format!("{prefix}classifier.b"), vec![dbn.n_classes()], &dbn.classifier_b));
}

fn write_named(path: &Path, tensors: &Named, metadata: HashMap<String, String>) -> Result<()> {
    let refs: Vec<(&str, Vec<usize>, &[f32])> = tensors.iter().map(|(n, s, d)| (n.as_str(), s.clone(), *d)).collect();
    write_atomic(path, &safetensors_bytes(&refs, metadata))
}

/// Sizes from a metadata field "a,b,c", each at least 1.
fn read_sizes(path: &Path, metadata: &HashMap<String, String>, field: &str) -> Result<Vec<usize>> {
    let bad = |msg: String| RbmError::model_file(path, msg);
    let sizes: Vec<usize> = metadata
        .get(field)
        .ok_or_else(|| bad(format!("metadata field `{field}` is missing")))?
        .split(',')
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.trim().parse::<usize>().map_err(|_| bad(format!("metadata `{field}` is unreadable: {n:?}"))))
        .collect::<Result<_>>()?;
    if sizes.contains(&0) {
        return Err(bad(format!("metadata `{field}` {sizes:?}: a size of 0")));
    }
    Ok(sizes)
}

/// The RBMs `{prefix}layers.{i}.*` of consecutive `sizes` (inputs first).
fn read_layers(path: &Path, st: &SafeTensors, prefix: &str, sizes: &[usize]) -> Result<Vec<Rbm>> {
    let mut layers = Vec::new();
    for (i, pair) in sizes.windows(2).enumerate() {
        let (nv, nh) = (pair[0], pair[1]);
        let w = tensor(path, st, &format!("{prefix}layers.{i}.W"), &[nv, nh])?;
        let hbias = tensor(path, st, &format!("{prefix}layers.{i}.hbias"), &[nh])?;
        let vbias = tensor(path, st, &format!("{prefix}layers.{i}.vbias"), &[nv])?;
        layers.push(Rbm::from_params(nv, nh, w, hbias, vbias).map_err(|e| RbmError::model_file(path, e.to_string()))?);
    }
    Ok(layers)
}

/// The network `{prefix}...` of `sizes` (inputs, layers, classes).
fn read_dbn(path: &Path, st: &SafeTensors, prefix: &str, sizes: &[usize]) -> Result<crate::dbn::Dbn> {
    let bad = |msg: String| RbmError::model_file(path, msg);
    if sizes.len() < 3 {
        return Err(bad(format!("sizes {sizes:?}: need an input, a layer and classes")));
    }
    let layers = read_layers(path, st, prefix, &sizes[..sizes.len() - 1])?;
    let (last, classes) = (sizes[sizes.len() - 2], sizes[sizes.len() - 1]);
    let mut dbn = crate::dbn::Dbn::new(layers, classes).map_err(|e| bad(e.to_string()))?;
    dbn.classifier_w = tensor(path, st, &format!("{prefix}classifier.W"), &[last, classes])?;
    dbn.classifier_b = tensor(path, st, &format!("{prefix}classifier.b"), &[classes])?;
    Ok(dbn)
}

/// The bytes and metadata of a safetensors file of the given `format` (`what`, in errors).
fn open_format(path: &Path, format: &str, what: &str) -> Result<(Vec<u8>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| RbmError::io(path, e))?;
    let bad = |msg: String| RbmError::model_file(path, msg);
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    check_format_version(path, &metadata)?;
    if metadata.get("format").map(String::as_str) != Some(format) {
        return Err(bad(format!("not a {what} (its metadata lacks format = {format})")));
    }
    Ok((bytes, metadata))
}

/// Reads a file written by [`save_dbn`], checking every tensor's shape
/// against the layer sizes in its metadata; errors name the file and tensor.
pub fn load_dbn(path: &Path) -> Result<(crate::dbn::Dbn, HashMap<String, String>)> {
    let (bytes, metadata) = open_format(path, "rbm-dbn", "DBN file")?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| RbmError::model_file(path, e.to_string()))?;
    let sizes = read_sizes(path, &metadata, "sizes")?;
    Ok((read_dbn(path, &st, "", &sizes)?, metadata))
}

/// A `rbm dbn train` run's checkpoint: while pretraining, the finished
/// layers (the layer in progress has its own RBM checkpoint); while
/// fine-tuning, the network and the best one so far. `metadata` is the
/// caller's (the run's settings and position).
#[derive(Clone, Debug, PartialEq)]
pub struct DbnCheckpoint {
    pub layers: Vec<Rbm>,
    pub tuning: Option<(crate::dbn::Dbn, crate::dbn::Dbn)>,
    pub metadata: HashMap<String, String>,
}

/// Writes `ck` atomically: tensors `layers.{i}.*` (pretraining) or `net.*`
/// and `best.*` (fine-tuning), metadata `format` = "rbm-dbn-checkpoint".
pub fn save_dbn_checkpoint(path: &Path, ck: &DbnCheckpoint) -> Result<()> {
    let mut metadata = ck.metadata.clone();
    metadata.insert("format".into(), "rbm-dbn-checkpoint".into());
    metadata.insert("format_version".into(), FORMAT_VERSION.into());
    let mut tensors = Vec::new();
    match &ck.tuning {
        None => {
            let sizes: Vec<String> = ck
                .layers
                .first()
                .map(|r| r.n_visible)
                .into_iter()
                .chain(ck.layers.iter().map(|r| r.n_hidden))
                .map(|n| n.to_string())
                .collect();
            metadata.insert("layer_sizes".into(), sizes.join(","));
            push_layer_tensors(&mut tensors, "", &ck.layers);
        }
        Some((net, best)) => {
            metadata.insert("sizes".into(), dbn_sizes(net));
            push_dbn_tensors(&mut tensors, "net.", net);
            push_dbn_tensors(&mut tensors, "best.", best);
        }
    }
    write_named(path, &tensors, metadata)
}

/// Reads a checkpoint written by [`save_dbn_checkpoint`].
pub fn load_dbn_checkpoint(path: &Path) -> Result<DbnCheckpoint> {
    let (bytes, metadata) = open_format(path, "rbm-dbn-checkpoint", "DBN checkpoint")?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| RbmError::model_file(path, e.to_string()))?;
    if metadata.contains_key("sizes") {
        let sizes = read_sizes(path, &metadata, "sizes")?;
        let (net, best) = (read_dbn(path, &st, "net.", &sizes)?, read_dbn(path, &st, "best.", &sizes)?);
        Ok(DbnCheckpoint { layers: net.layers.clone(), tuning: Some((net, best)), metadata })
    } else {
        let sizes = read_sizes(path, &metadata, "layer_sizes")?;
        Ok(DbnCheckpoint { layers: read_layers(path, &st, "", &sizes)?, tuning: None, metadata })
    }
}

/// A checkpoint's contents: the trainer and the caller's extra metadata.
pub struct Checkpoint {
    pub trainer: crate::train::Trainer,
    /// what the caller stored beside the trainer (for the CLI: its sampling flags)
    pub extra: String,
}

/// Writes everything needed to continue training (parameters, persistent
/// chain, random streams, position, metrics) atomically to `path`.
pub fn save_checkpoint(path: &Path, trainer: &mut crate::train::Trainer, extra: &str) -> Result<()> {
    let rbm = trainer.rbm();
    let (state, chain) = trainer.state();
    let metadata = HashMap::from([
        ("format".to_string(), "rbm-checkpoint".to_string()),
        ("format_version".to_string(), FORMAT_VERSION.to_string()),
        ("config".to_string(), serde_json::to_string(trainer.config()).expect("config serialises")),
        ("state".to_string(), serde_json::to_string(&state).expect("state serialises")),
        ("extra".to_string(), extra.to_string()),
    ]);
    let b = trainer.config().all_chains();
    let sigma = trainer.gaussian_model().map(|g| g.sigma);
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
        ("W", vec![rbm.n_visible, rbm.n_hidden], &rbm.w),
        ("hbias", vec![rbm.n_hidden], &rbm.hbias),
        ("vbias", vec![rbm.n_visible], &rbm.vbias),
        ("chain", vec![b, rbm.n_hidden], &chain),
    ];
    if let Some(sigma) = &sigma {
        tensors.push(("sigma", vec![rbm.n_visible], sigma));
    }
    let velocity = trainer.config().has_momentum().then(|| trainer.velocity());
    if let Some(v) = &velocity {
        tensors.push(("velocity_W", vec![rbm.n_visible, rbm.n_hidden], &v.w));
        tensors.push(("velocity_hbias", vec![rbm.n_hidden], &v.hbias));
        tensors.push(("velocity_vbias", vec![rbm.n_visible], &v.vbias));
    }
    let offsets = trainer.config().centering.then(|| trainer.offsets());
    if let Some((mu, lambda)) = &offsets {
        tensors.push(("offset_v", vec![rbm.n_visible], mu));
        tensors.push(("offset_h", vec![rbm.n_hidden], lambda));
    }
    let bytes = safetensors_bytes(&tensors, metadata);
    write_atomic(path, &bytes)
}

/// Reads a checkpoint written by [`save_checkpoint`].
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| RbmError::io(path, e))?;
    let (rbm, meta) = parse_model(path, &bytes)?;
    let bad = |msg: String| RbmError::model_file(path, msg);
    if meta.get("format").map(String::as_str) != Some("rbm-checkpoint") {
        return Err(bad("not a checkpoint (its metadata lacks format = rbm-checkpoint)".into()));
    }
    let field = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata field `{k}` is missing")));
    let config: crate::train::TrainConfig =
        serde_json::from_str(field("config")?).map_err(|e| bad(format!("metadata `config`: {e}")))?;
    let state: crate::train::TrainerState =
        serde_json::from_str(field("state")?).map_err(|e| bad(format!("metadata `state`: {e}")))?;
    let config = config.check(usize::MAX).map_err(|e| bad(format!("stored configuration: {e}")))?;
    if config.n_hidden != rbm.n_hidden {
        return Err(bad(format!("configuration says {} hidden units, W has {}", config.n_hidden, rbm.n_hidden)));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let chain = tensor(path, &st, "chain", &[config.all_chains(), rbm.n_hidden])?;
    let sigma = match config.visible {
        crate::train::Visible::Gaussian => Some(tensor(path, &st, "sigma", &[rbm.n_visible])?),
        crate::train::Visible::Bernoulli => None,
    };
    let (momentum, centering) = (config.has_momentum(), config.centering);
    let mut trainer = crate::train::Trainer::restore(&rbm, sigma.as_deref(), config, state, &chain)
        .map_err(|e| bad(e.to_string()))?;
    if momentum {
        let (nv, nh) = (rbm.n_visible, rbm.n_hidden);
        let velocity = crate::model::Rbm {
            n_visible: nv,
            n_hidden: nh,
            w: tensor(path, &st, "velocity_W", &[nv, nh])?,
            hbias: tensor(path, &st, "velocity_hbias", &[nh])?,
            vbias: tensor(path, &st, "velocity_vbias", &[nv])?,
        };
        trainer.set_velocity(&velocity).map_err(|e| bad(e.to_string()))?;
    }
    if centering {
        let mu = tensor(path, &st, "offset_v", &[rbm.n_visible])?;
        let lambda = tensor(path, &st, "offset_h", &[rbm.n_hidden])?;
        trainer.set_offsets(&mu, &lambda).map_err(|e| bad(e.to_string()))?;
    }
    Ok(Checkpoint { trainer, extra: meta.get("extra").cloned().unwrap_or_default() })
}

/// The bytes of a NumPy .npy file (format 1.0) holding `data` as float32
/// little-endian, C order, with `shape`.
pub fn npy_bytes(data: &[f32], shape: &[usize]) -> Vec<u8> {
    assert_eq!(data.len(), shape.iter().product::<usize>());
    npy_encode("<f4", shape, data.iter().flat_map(|x| x.to_le_bytes()))
}

/// The bytes of a NumPy .npy file holding `labels` as int64, shape `[n]`.
pub fn npy_i64_bytes(labels: &[i64]) -> Vec<u8> {
    npy_encode("<i8", &[labels.len()], labels.iter().flat_map(|x| x.to_le_bytes()))
}

/// A .npy file (format 1.0) of dtype `descr`, C order, with `shape`, whose
/// values are `bytes`.
fn npy_encode(descr: &str, shape: &[usize], bytes: impl Iterator<Item = u8>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + header length (2) + header, padded with spaces
    // and a final newline to a multiple of 64 bytes.
    let total = (10 + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(bytes);
    out
}
