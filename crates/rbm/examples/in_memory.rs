//! Trains an RBM on an array made in code, through the public API alone,
//! and shows that its exact log-likelihood rose.
//! Run: cargo run --release --example in_memory
use rbm::estimate::{exact_log_z, mean_neg_free_energy};
use rbm::{fit, FitOptions, Method, Rbm, RowMatrix, TrainConfig, Trainer};

fn main() -> rbm::Result<()> {
    // 400 rows of 16 values: one of four 4-pixel bars, with 5% of the pixels flipped
    let mut rng = rbm::Stream::new(42, 0);
    let values: Vec<f32> = (0..400 * 16)
        .map(|k| {
            let bar = (k / 16) % 4 == (k % 16) / 4;
            if (rng.uniform() < 0.05) != bar {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let data = RowMatrix::new(&values, 16)?;

    let mut config = TrainConfig::default();
    (config.method, config.k, config.lr, config.batch_size, config.epochs) = (Method::Pcd, 1, 0.05, 10, 30);
    (config.n_hidden, config.train_size) = (8, 400);
    let untrained = Rbm::init(16, config.n_hidden, config.seed)?;
    let mut trainer = Trainer::new(&untrained, config.check(400)?)?;
    fit(&mut trainer, &data, &FitOptions::new(2), &mut ())?;

    let ll = |m: &Rbm| mean_neg_free_energy(m, &values) - exact_log_z(m, 1);
    let trained = trainer.rbm();
    println!("exact average log-likelihood: {:.3} nats before, {:.3} after", ll(&untrained), ll(&trained));
    assert!(ll(&trained) > ll(&untrained));
    Ok(())
}
