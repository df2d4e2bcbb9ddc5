//! Files: atomic writes, and the model file (safetensors: tensors `W`
//! `[n_visible, n_hidden]`, `hbias`, `vbias`, f32 little-endian, with the
//! training configuration as metadata).

use crate::error::{RbmError, Result};
use crate::Rbm;
use safetensors::tensor::{Dtype, TensorView};
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

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The safetensors bytes of `tensors` (name, shape, values) with `metadata`.
pub fn safetensors_bytes(tensors: &[(&str, Vec<usize>, &[f32])], metadata: HashMap<String, String>) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| f32_bytes(v)).collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| (name.to_string(), TensorView::new(Dtype::F32, shape.clone(), b).expect("consistent tensor")))
        .collect();
    safetensors::serialize(views, &Some(metadata)).expect("serialising tensors into memory")
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

/// One f32 tensor of a parsed file, checked for its dtype and shape.
pub fn tensor(path: &Path, st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st.tensor(name).map_err(|_| RbmError::model_file(path, format!("tensor `{name}` is missing")))?;
    if t.dtype() != Dtype::F32 {
        return Err(RbmError::model_file(path, format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
    }
    if t.shape() != shape {
        return Err(RbmError::model_file(path, format!("tensor `{name}` has shape {:?}, expected {shape:?}", t.shape())));
    }
    let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(RbmError::model_file(path, format!("tensor `{name}` holds a non-finite value ({}) at index {i}", v[i])));
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
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| RbmError::model_file(path, format!("not a valid safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| RbmError::model_file(path, format!("not a valid safetensors file: {e}")))?;
    let w = st.tensor("W").map_err(|_| RbmError::model_file(path, "tensor `W` is missing"))?;
    if w.shape().len() != 2 || w.shape()[0] == 0 || w.shape()[1] == 0 {
        return Err(RbmError::model_file(path, format!("tensor `W` has shape {:?}, expected [n_visible, n_hidden]", w.shape())));
    }
    let (nv, nh) = (w.shape()[0], w.shape()[1]);
    let w = tensor(path, &st, "W", &[nv, nh])?;
    let hbias = tensor(path, &st, "hbias", &[nh])?;
    let vbias = tensor(path, &st, "vbias", &[nv])?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let rbm = Rbm::from_params(nv, nh, w, hbias, vbias).map_err(|e| RbmError::model_file(path, e.to_string()))?;
    Ok((rbm, metadata))
}
