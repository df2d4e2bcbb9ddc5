//! Model files and checkpoints: round trips, exact resume, and many thousands
//! of mutated inputs that must be refused without a panic.

mod common;
use common::*;
use rbm::data::{parse_idx_images, parse_idx_labels};
use rbm::modelfile::{load_checkpoint, parse_model, save_checkpoint, save_model};
use rbm::train::{Method, Trainer};
use rbm::Stream;
use std::collections::HashMap;
use std::path::Path;

#[test]
fn a_model_file_round_trips_with_its_metadata() {
    let rbm = random_rbm(7, 5, 2.0, 1);
    let d = tmpdir("roundtrip");
    let p = d.join("m.safetensors");
    save_model(&p, &rbm, HashMap::from([("seed".to_string(), "5".to_string())])).unwrap();
    let (back, meta) = rbm::modelfile::load_model(&p).unwrap();
    assert_eq!(back, rbm);
    assert_eq!(meta["seed"], "5");
    assert_eq!(meta["format_version"], "1");
    assert_eq!((meta["n_visible"].as_str(), meta["n_hidden"].as_str()), ("7", "5"));
    // the same model gives the same bytes
    let q = d.join("n.safetensors");
    save_model(&q, &rbm, HashMap::from([("seed".to_string(), "5".to_string())])).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&q).unwrap());
    // no temporary file is left behind
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
}

fn patterns_data() -> rbm::data::Images {
    let rows: Vec<Vec<f32>> =
        (0..60).map(|i| (0..9).map(|j| ((i * 7 + j * 3) % 5 == 0) as u8 as f32).collect()).collect();
    images_of(&rows)
}

#[test]
fn resuming_from_a_checkpoint_mid_epoch_is_bit_identical() {
    for method in [Method::Pcd, Method::Cd] {
        let cfg = checked(&train_config(method, 3, 0.1, 4, 3, 6, 8, 60));
        let data = patterns_data();
        let rbm = rbm::Rbm::new(9, 6, &mut Stream::new(8, 0)).unwrap();
        let mut whole = Trainer::new(&rbm, cfg.clone()).unwrap();
        while !whole.done() {
            whole.run(&data, 4, 2).unwrap();
        }
        let mut first = Trainer::new(&rbm, cfg.clone()).unwrap();
        first.run(&data, 15, 2).unwrap(); // epoch 0 done
        first.run(&data, 7, 1).unwrap(); // into epoch 1
        let d = tmpdir(&format!("resume-{method:?}"));
        let p = d.join("ck.safetensors");
        save_checkpoint(&p, &mut first, "extra").unwrap();
        let ck = load_checkpoint(&p).unwrap();
        assert_eq!(ck.extra, "extra");
        let mut second = ck.trainer;
        assert_eq!((second.epoch(), second.batch_index()), (1, 7));
        while !second.done() {
            second.run(&data, 5, 2).unwrap();
        }
        assert_eq!(whole.rbm(), second.rbm(), "{method:?}");
        let costs = |t: &Trainer| t.history().iter().map(|r| (r.epoch, r.cost)).collect::<Vec<_>>();
        assert_eq!(costs(&whole), costs(&second));
    }
}

#[test]
fn a_checkpoint_of_rbm_0_1_resumes_deterministically_with_fresh_streams() {
    // rbm 0.1 wrote no n_parts in the configuration and one pair of random
    // streams per part; rewrite a checkpoint of ours that way.
    let cfg = checked(&train_config(Method::Pcd, 1, 0.1, 4, 1, 6, 8, 60));
    let mut t = Trainer::new(&rbm::Rbm::new(9, 6, &mut Stream::new(8, 0)).unwrap(), cfg).unwrap();
    t.run(&patterns_data(), 3, 1).unwrap();
    let d = tmpdir("old-checkpoint");
    let p = d.join("ck.safetensors");
    save_checkpoint(&p, &mut t, "{}").unwrap();
    let (model, mut meta) = rbm::modelfile::load_model(&p).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
    config.as_object_mut().unwrap().remove("n_parts");
    let mut state: serde_json::Value = serde_json::from_str(&meta["state"]).unwrap();
    let state_obj = state.as_object_mut().unwrap();
    let pair = serde_json::json!([state_obj["hidden_streams"][0], state_obj["visible_streams"][0]]);
    state_obj.remove("hidden_streams");
    state_obj.remove("visible_streams");
    state_obj.insert("streams".into(), serde_json::json!([pair.clone(), pair]));
    meta.insert("config".into(), config.to_string());
    meta.insert("state".into(), state.to_string());
    let (rbm, chain) = (t.rbm(), t.state().1);
    let bytes = rbm::modelfile::safetensors_bytes(
        &[
            ("W", vec![9, 6], &rbm.w),
            ("hbias", vec![6], &rbm.hbias),
            ("vbias", vec![9], &rbm.vbias),
            ("chain", vec![4, 6], &chain),
        ],
        meta,
    );
    let old = d.join("old.safetensors");
    std::fs::write(&old, bytes).unwrap();
    // its parameters load as a model file
    assert_eq!(rbm::modelfile::load_model(&old).unwrap().0, model);
    // and the run resumes, with 2 parts (0.1's), at its position, deterministically
    let resume = || {
        let mut t = load_checkpoint(&old).unwrap().trainer;
        assert!(t.streams_rederived());
        assert_eq!((t.config().n_parts, t.epoch(), t.batch_index()), (2, 0, 3));
        t.run(&patterns_data(), 20, 2).unwrap();
        t.rbm()
    };
    assert_eq!(resume(), resume());
    // a checkpoint of ours restores its streams as they were
    assert!(!load_checkpoint(&p).unwrap().trainer.streams_rederived());
}

/// Mutations of a valid input: bit flips, byte overwrites, truncations,
/// insertions, and edits of the first 32 bytes (the headers), from a seeded stream.
fn mutate(good: &[u8], rng: &mut Stream) -> Vec<u8> {
    let mut b = good.to_vec();
    for _ in 0..1 + rng.below(4) {
        let kind = rng.below(6);
        let n = b.len().max(1) as u64;
        match kind {
            0 => {
                let i = rng.below(n) as usize % b.len().max(1);
                if !b.is_empty() {
                    b[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(32.min(n)) as usize;
                if i < b.len() {
                    b[i] = rng.below(256) as u8;
                }
            }
            2 => b.truncate(rng.below(n + 1) as usize),
            3 => {
                let i = rng.below(n + 1) as usize;
                b.insert(i.min(b.len()), rng.below(256) as u8);
            }
            4 => {
                let i = rng.below(n) as usize;
                if i + 4 <= b.len() {
                    b[i..i + 4].copy_from_slice(&(rng.below(u32::MAX as u64) as u32).to_le_bytes());
                }
            }
            _ => {
                let i = rng.below(16.min(n)) as usize;
                if i < b.len() {
                    b[i] = [0, 0xff, b'{', b'"', b'0', b']'][rng.below(6) as usize];
                }
            }
        }
    }
    b
}

#[test]
fn fuzz_the_idx_and_model_readers_with_mutated_inputs() {
    // 30,000 mutated IDX image files, 30,000 label files, 30,000 model files
    // (RBM_FUZZ_ITERS sets another count, for longer runs): each must parse or
    // be refused, never panic.
    let iters: usize = std::env::var("RBM_FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(30_000);
    let mut imgs = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5];
    imgs.extend((0..60).map(|i| i as u8));
    let mut labs = vec![0, 0, 8, 1, 0, 0, 0, 5];
    labs.extend([1, 2, 3, 4, 5]);
    let rbm = random_rbm(6, 4, 1.0, 2);
    let d = tmpdir("fuzz");
    let p = d.join("m.safetensors");
    save_model(&p, &rbm, HashMap::from([("config".to_string(), "{}".to_string())])).unwrap();
    let model = std::fs::read(&p).unwrap();
    assert!(parse_idx_images(Path::new("x"), &imgs).is_ok());
    assert!(parse_idx_labels(Path::new("x"), &labs).is_ok());
    assert!(parse_model(Path::new("x"), &model).is_ok());
    let mut rng = Stream::new(99, 0);
    let (mut ok_i, mut ok_m) = (0, 0);
    for _ in 0..iters {
        ok_i += parse_idx_images(Path::new("x"), &mutate(&imgs, &mut rng)).is_ok() as usize;
        let _ = parse_idx_labels(Path::new("x"), &mutate(&labs, &mut rng));
        if let Ok((r, _)) = parse_model(Path::new("x"), &mutate(&model, &mut rng)) {
            ok_m += 1;
            assert!(r.w.iter().chain(&r.hbias).chain(&r.vbias).all(|x| x.is_finite()));
            assert_eq!(r.w.len(), r.n_visible * r.n_hidden);
        }
    }
    // some mutations (pixel bytes, weight bytes) leave a valid file: the fuzzer reached the data
    assert!(ok_i > 100 && ok_m > 100, "{ok_i} {ok_m}");
}

#[test]
fn fuzz_the_npy_and_csv_readers_with_mutated_files() {
    // 2,000 mutated .npy files and 2,000 CSV files (RBM_FUZZ_ITERS / 15 for
    // longer runs; they go through the file system): each must be read or
    // refused, never panic; what is read has whole rows of finite values.
    let iters = std::env::var("RBM_FUZZ_ITERS").ok().and_then(|s| s.parse::<usize>().ok()).map_or(2000, |n| n / 15);
    let d = tmpdir("fuzz-readers");
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }          \n";
    npy.extend((header.len() as u16).to_le_bytes());
    npy.extend(header.as_bytes());
    npy.extend((0..12).flat_map(|i| (i as f32 / 16.0).to_le_bytes()));
    let csv = b"a,b,c\n0.5,1,0\n0,0.25,1\n".to_vec();
    let (p_npy, p_csv) = (d.join("f.npy"), d.join("f.csv"));
    std::fs::write(&p_npy, &npy).unwrap();
    std::fs::write(&p_csv, &csv).unwrap();
    assert!(rbm::npy::NpyFile::open(&p_npy).is_ok() && rbm::csv::read_csv(&p_csv, None).is_ok());
    let mut rng = Stream::new(98, 0);
    let (mut ok_n, mut ok_c) = (0, 0);
    for _ in 0..iters {
        std::fs::write(&p_npy, mutate(&npy, &mut rng)).unwrap();
        if let Ok(f) = rbm::npy::NpyFile::open(&p_npy) {
            use rbm::DataRows;
            let mut v = vec![0f32; f.n_rows() * f.n_cols()];
            if f.check_values(false).is_ok() {
                ok_n += 1;
                f.copy_rows(0, &mut v).unwrap();
                assert!(v.iter().all(|x| x.is_finite()));
            }
        }
        std::fs::write(&p_csv, mutate(&csv, &mut rng)).unwrap();
        if let Ok(t) = rbm::csv::read_csv(&p_csv, None) {
            ok_c += 1;
            assert!(t.n_cols > 0 && t.values.len() % t.n_cols == 0 && t.values.iter().all(|x| x.is_finite()));
        }
    }
    assert!(ok_n > 20 && ok_c > 20, "{ok_n} {ok_c}");
}
