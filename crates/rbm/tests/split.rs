//! The seeded validation split, the row subset it trains on, and the
//! binarisation of validation rows.

use rbm::data::{binarize_values, Binarize, Images, RowMatrix};
use rbm::split::{split_rows, Subset};
use rbm::DataRows;

#[test]
fn a_split_is_exact_in_size_ordered_disjoint_complete_and_fixed_by_its_seed() {
    for (n, f) in [(10, 0.3), (1797, 0.2), (5, 0.01), (5, 0.7), (100_003, 0.1)] {
        let (train, valid) = split_rows(n, f, 42).unwrap();
        let want = ((f * n as f64).round() as usize).max(1);
        assert_eq!(valid.len(), want, "n {n}, fraction {f}");
        assert!(train.windows(2).all(|w| w[0] < w[1]) && valid.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<u32> = train.iter().chain(&valid).cloned().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n as u32).collect::<Vec<_>>());
        assert_eq!(split_rows(n, f, 42).unwrap(), (train.clone(), valid.clone()));
        if n > 100 {
            assert_ne!(split_rows(n, f, 43).unwrap().1, valid);
        }
    }
}

#[test]
fn every_row_is_equally_likely_to_be_held_out() {
    // 10 rows, 3 held out, over 4,000 seeds: each row is held out 1,200 times
    // in expectation, with standard deviation sqrt(4000 * 0.3 * 0.7) = 29;
    // 5 standard deviations (145) leave a false alarm about once in 10^5 runs
    let mut counts = [0usize; 10];
    for seed in 0..4000 {
        for i in split_rows(10, 0.3, seed).unwrap().1 {
            counts[i as usize] += 1;
        }
    }
    for (i, &c) in counts.iter().enumerate() {
        assert!(c.abs_diff(1200) < 145, "row {i} held out {c} times of 4,000");
    }
}

#[test]
fn splits_that_leave_a_part_empty_are_refused() {
    for (n, f, needle) in [(10, 0.0, "strictly between"), (10, 1.0, "strictly between"), (1, 0.5, "no training row")] {
        let e = split_rows(n, f, 1).unwrap_err().to_string();
        assert!(e.contains(needle), "{n} {f}: {e}");
    }
    assert!(split_rows(10, f64::NAN, 1).is_err());
}

#[test]
fn a_subset_copies_the_rows_it_names_in_order() {
    let values: Vec<f32> = (0..30).map(|x| x as f32).collect(); // 10 rows of 3
    let m = RowMatrix::new(&values, 3).unwrap();
    let index = [0u32, 1, 2, 5, 7, 8, 9];
    let s = Subset::new(&m, &index).unwrap();
    assert_eq!((s.n_rows(), s.n_cols()), (7, 3));
    let mut out = vec![0f32; 4 * 3];
    s.copy_rows(2, &mut out).unwrap(); // rows 2, 5, 7, 8: runs across a gap
    assert_eq!(out, [6., 7., 8., 15., 16., 17., 21., 22., 23., 24., 25., 26.]);
    assert!(Subset::new(&m, &[10]).is_err());
}

#[test]
fn binarising_values_draws_as_binarising_images() {
    let pixels: Vec<u8> = (0..400u32).map(|i| (i * 37 % 256) as u8).collect();
    let images = Images { n: 4, rows: 10, cols: 10, pixels };
    let mut values = images.to_f32();
    binarize_values(&mut values, 99);
    assert_eq!(values, images.binarize(Binarize::Stochastic, 99).to_f32());
}
