//! The .npy and CSV readers: every dtype and order, headers and delimiters,
//! and every bad input refused with the file, row and column named.

mod common;
use common::tmpdir;
use rbm::csv::{read_csv, Delimiter};
use rbm::npy::{NpyDtype, NpyFile};
use rbm::DataRows;
use std::path::{Path, PathBuf};

/// A .npy file (format version `version`) with a header dict for `descr`,
/// `fortran` and `shape`, then `payload`.
fn npy_bytes(version: u8, descr: &str, fortran: bool, shape: &str, payload: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    let prefix = if version == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(payload);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The 3 x 4 matrix used throughout: value (r, c) = r + c / 8 (exact in f32),
/// and its u8 version 40 r + 10 c.
fn expected(dtype: NpyDtype) -> Vec<f32> {
    (0..3)
        .flat_map(|r| {
            (0..4).map(move |c| match dtype {
                NpyDtype::U8 => (40 * r + 10 * c) as f32 / 255.0,
                _ => r as f32 + c as f32 / 8.0,
            })
        })
        .collect()
}

/// The payload of that matrix in `dtype`, in C or Fortran order.
fn payload(dtype: NpyDtype, fortran: bool) -> Vec<u8> {
    let order: Vec<(usize, usize)> = if fortran {
        (0..4).flat_map(|c| (0..3).map(move |r| (r, c))).collect()
    } else {
        (0..3).flat_map(|r| (0..4).map(move |c| (r, c))).collect()
    };
    order
        .into_iter()
        .flat_map(|(r, c)| match dtype {
            NpyDtype::U8 => vec![(40 * r + 10 * c) as u8],
            NpyDtype::F32 => (r as f32 + c as f32 / 8.0).to_le_bytes().to_vec(),
            NpyDtype::F64 => (r as f64 + c as f64 / 8.0).to_le_bytes().to_vec(),
        })
        .collect()
}

#[test]
fn npy_files_of_every_dtype_order_and_version_read_the_same_matrix() {
    let d = tmpdir("npy-good");
    for (dtype, descr) in [(NpyDtype::U8, "|u1"), (NpyDtype::F32, "<f4"), (NpyDtype::F64, "<f8")] {
        for fortran in [false, true] {
            for version in [1, 2] {
                let name = format!("{descr}-{fortran}-{version}.npy").replace(['|', '<'], "");
                let p = write(&d, &name, &npy_bytes(version, descr, fortran, "(3, 4)", &payload(dtype, fortran)));
                let f = NpyFile::open(&p).unwrap();
                assert_eq!((f.n_rows(), f.n_cols(), f.dtype(), f.fortran_order()), (3, 4, dtype, fortran), "{name}");
                let mut all = vec![0f32; 12];
                f.copy_rows(0, &mut all).unwrap();
                assert_eq!(all, expected(dtype), "{name}");
                let mut last_two = vec![0f32; 8];
                f.copy_rows(1, &mut last_two).unwrap();
                assert_eq!(last_two, expected(dtype)[4..], "{name}: rows 1..3");
                f.check_values(dtype == NpyDtype::U8).unwrap();
            }
        }
    }
}

/// Opens (and checks the values of) `bytes` as a .npy file, expecting an
/// error that names the file and contains every needle.
fn npy_refused(name: &str, bytes: &[u8], unit_interval: bool, needles: &[&str]) {
    let d = tmpdir("npy-bad");
    let p = write(&d, name, bytes);
    let err = NpyFile::open(&p)
        .and_then(|f| f.check_values(unit_interval))
        .err()
        .unwrap_or_else(|| panic!("{name} was read"));
    let msg = err.to_string();
    assert!(msg.contains(name), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "{name}: {msg:?} lacks {n:?}");
    }
}

#[test]
fn bad_npy_files_are_refused_with_the_reason() {
    let good = payload(NpyDtype::F32, false);
    npy_refused("empty.npy", b"", false, &["empty file"]);
    npy_refused("text.npy", b"1,2,3\n4,5,6\n", false, &["not a .npy file"]);
    npy_refused("truncated.npy", &npy_bytes(1, "<f4", false, "(3, 4)", &good[..40]), false, &["truncated", "3 x 4"]);
    npy_refused(
        "oversized.npy",
        &npy_bytes(1, "<f4", false, "(3, 4)", &[good.clone(), vec![0; 4]].concat()),
        false,
        &["oversized"],
    );
    npy_refused("three-d.npy", &npy_bytes(1, "<f4", false, "(3, 2, 2)", &good), false, &["3-D", "2-D"]);
    npy_refused("zero-d.npy", &npy_bytes(1, "<f4", false, "()", &good[..4]), false, &["0-D"]);
    npy_refused("one-d.npy", &npy_bytes(1, "<f4", false, "(12,)", &good), false, &["1-D"]);
    npy_refused("int.npy", &npy_bytes(1, "<i4", false, "(3, 4)", &good), false, &["'<i4' is not supported", "float32"]);
    npy_refused("big.npy", &npy_bytes(1, ">f4", false, "(3, 4)", &good), false, &["big-endian"]);
    npy_refused(
        "version9.npy",
        &npy_bytes(1, "<f4", false, "(3, 4)", &good)
            .iter()
            .enumerate()
            .map(|(i, &b)| if i == 6 { 9 } else { b })
            .collect::<Vec<_>>(),
        false,
        &["version 9"],
    );
    // values: NaN at row 2, column 1; 1.5 at row 1, column 3 for binary units
    let mut v = expected(NpyDtype::F32);
    v[2 * 4 + 1] = f32::NAN;
    let nan: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    npy_refused(
        "nan.npy",
        &npy_bytes(1, "<f4", false, "(3, 4)", &nan),
        false,
        &["row 2, column 1", "NaN", "not a finite number"],
    );
    let ranged: Vec<u8> = expected(NpyDtype::F32)
        .iter()
        .map(|x| x / 4.0)
        .enumerate()
        .flat_map(|(i, x)| (if i == 7 { 1.5 } else { x }).to_le_bytes())
        .collect();
    npy_refused(
        "range.npy",
        &npy_bytes(1, "<f4", false, "(3, 4)", &ranged),
        true,
        &["row 1, column 3", "outside [0, 1]", "Gaussian"],
    );
    // the same values are fine when real values are allowed
    let p = write(&tmpdir("npy-real"), "range.npy", &npy_bytes(1, "<f4", false, "(3, 4)", &ranged));
    NpyFile::open(&p).unwrap().check_values(false).unwrap();
}

#[test]
fn python_writes_npy_files_that_we_read() {
    // numpy's own writer, every dtype and order: when RBM_PYTHON_TESTS is set (.ci/run sets it)
    if std::env::var_os("RBM_PYTHON_TESTS").is_none() {
        eprintln!("skipped: set RBM_PYTHON_TESTS=1 to run it");
        return;
    }
    let d = tmpdir("npy-python");
    let script = format!(
        "import numpy as np\nx = np.arange(12, dtype=np.float64).reshape(3, 4) * 20 / 8\n\
         for t in ['uint8', 'float32', 'float64']:\n  for o in ['C', 'F']:\n    np.save('{0}/%s-%s.npy' % (t, o), np.asarray(x, dtype=t, order=o))\n",
        d.display()
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for t in ["uint8", "float32", "float64"] {
        for o in ["C", "F"] {
            let f = NpyFile::open(&d.join(format!("{t}-{o}.npy"))).unwrap();
            let mut v = vec![0f32; 12];
            f.copy_rows(0, &mut v).unwrap();
            for (i, &x) in v.iter().enumerate() {
                let want = i as f64 * 20.0 / 8.0;
                let want = if t == "uint8" { (want as u8) as f64 / 255.0 } else { want };
                assert!((x as f64 - want).abs() < 1e-6, "{t} {o}[{i}]: {x} vs {want}");
            }
            assert_eq!(f.fortran_order(), o == "F");
        }
    }
}

#[test]
fn csv_files_with_and_without_headers_and_any_delimiter_read_the_same_matrix() {
    let d = tmpdir("csv-good");
    let rows = ["0,0.125,0.25,0.375", "1,1.125,1.25,1.375", "2,2.125,2.25,2.375"];
    let want = expected(NpyDtype::F32);
    for (name, delim) in [("comma", ","), ("semicolon", ";"), ("tab", "\t"), ("space", "  ")] {
        for header in [false, true] {
            let mut text = String::new();
            if header {
                text += &["a", "b", "c", "label"].join(delim);
                text += "\n";
            }
            for r in rows {
                text += &r.replace(',', delim);
                text += "\n";
            }
            text += "\n"; // a trailing empty line is ignored
            let p = write(&d, &format!("{name}-{header}.csv"), text.as_bytes());
            let t = read_csv(&p, None).unwrap();
            assert_eq!((t.n_rows(), t.n_cols), (3, 4), "{name} {header}");
            assert_eq!(t.values, want, "{name} {header}");
            assert_eq!(t.header.is_some(), header);
            let mut v = vec![0f32; 12];
            t.rows().copy_rows(0, &mut v).unwrap();
            assert_eq!(v, want);
        }
    }
    // a delimiter given, and a label column taken out by name
    let p = write(&d, "given.csv", b"x|y|label\n1|2|7\n3|4|8\n");
    let mut t = read_csv(&p, Some(Delimiter::Char('|'))).unwrap();
    assert_eq!(t.take_column("label").unwrap(), vec![7.0, 8.0]);
    assert_eq!((t.values.clone(), t.n_cols), (vec![1.0, 2.0, 3.0, 4.0], 2));
    assert!(t.take_column("nope").unwrap_err().to_string().contains("no column is named \"nope\""));
}

fn csv_refused(name: &str, text: &[u8], needles: &[&str]) {
    let p = write(&tmpdir("csv-bad"), name, text);
    let msg = read_csv(&p, None).err().unwrap_or_else(|| panic!("{name} was read")).to_string();
    assert!(msg.contains(name), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "{name}: {msg:?} lacks {n:?}");
    }
}

#[test]
fn bad_csv_files_are_refused_with_line_and_column() {
    csv_refused("empty.csv", b"", &["empty file"]);
    csv_refused("blank.csv", b"\n \n", &["empty file"]);
    csv_refused("header-only.csv", b"a,b,c\n", &["only a header"]);
    csv_refused("ragged.csv", b"1,2,3\n4,5,6\n7,8\n", &["line 3", "2 fields", "first line has 3"]);
    csv_refused("word.csv", b"a,b\n1,2\n3,x\n", &["line 3, column 2", "\"x\" is not a number"]);
    csv_refused("nan.csv", b"1,2\n3,nan\n", &["line 2, column 2", "not a finite number"]);
    csv_refused("inf.csv", b"1,2\n1e300,4\n", &["line 2, column 1", "not a finite number"]);
    csv_refused("binary.csv", &[0xff, 0xfe, b'1', b'\n'], &["not UTF-8"]);
}

#[test]
fn csv_values_outside_the_unit_interval_name_their_line_and_column() {
    let p = write(&tmpdir("csv-range"), "range.csv", b"a,b\n\n0.5,1\n0,1.5\n");
    let t = read_csv(&p, None).unwrap();
    let msg = t.check_unit_interval().unwrap_err().to_string();
    assert!(msg.contains("range.csv") && msg.contains("line 4, column 2") && msg.contains("Gaussian"), "{msg}");
    let ok = write(&tmpdir("csv-range-ok"), "ok.csv", b"0.5,1\n0,0.25\n");
    read_csv(&ok, None).unwrap().check_unit_interval().unwrap();
}

#[test]
fn labels_of_every_integer_dtype_read_the_same_and_others_are_refused() {
    let d = tmpdir("labels");
    let want: Vec<i64> = vec![0, 7, 3, 9, 1];
    for (descr, size) in
        [("|i1", 1), ("|u1", 1), ("<i2", 2), ("<u2", 2), ("<i4", 4), ("<u4", 4), ("<i8", 8), ("<u8", 8)]
    {
        let payload: Vec<u8> = want.iter().flat_map(|&l| l.to_le_bytes()[..size].to_vec()).collect();
        for shape in ["(5,)", "(5, 1)"] {
            let p = write(&d, "y.npy", &npy_bytes(1, descr, false, shape, &payload));
            assert_eq!(rbm::npy::read_labels(&p).unwrap(), want, "{descr} {shape}");
        }
    }
    let negative = write(&d, "neg.npy", &npy_bytes(1, "<i2", false, "(2,)", &[0xff, 0xff, 2, 0]));
    assert_eq!(rbm::npy::read_labels(&negative).unwrap(), vec![-1, 2]);
    let refused = |name: &str, bytes: Vec<u8>, needle: &str| {
        let p = write(&d, name, &bytes);
        let e = rbm::npy::read_labels(&p).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
    };
    refused("float.npy", npy_bytes(1, "<f4", false, "(1,)", &1f32.to_le_bytes()), "no integer type");
    refused("two.npy", npy_bytes(1, "<i4", false, "(2, 2)", &[0; 16]), "1-D");
    refused("short.npy", npy_bytes(1, "<i4", false, "(3,)", &[0; 8]), "truncated");
    refused("big.npy", npy_bytes(1, ">i4", false, "(1,)", &[0; 4]), "big-endian");
    refused("huge.npy", npy_bytes(1, "<u8", false, "(1,)", &u64::MAX.to_le_bytes()), "too large");
}

#[test]
fn a_csv_label_column_must_hold_integers() {
    let d = tmpdir("csv-labels");
    let p = write(&d, "l.csv", b"x,label\n0.5,3\n0.25,-1\n");
    assert_eq!(read_csv(&p, None).unwrap().take_labels("label").unwrap(), vec![3, -1]);
    let p = write(&d, "frac.csv", b"x,label\n0.5,3\n0.25,1.5\n");
    let e = read_csv(&p, None).unwrap().take_labels("label").unwrap_err().to_string();
    assert!(e.contains("frac.csv") && e.contains("line 3") && e.contains("no integer"), "{e}");
}
