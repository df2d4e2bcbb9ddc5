//! `rbm train`'s recipe flags and presets: recorded in the model, refused
//! when out of range, and unchanged tutorial defaults.

mod common;
use common::*;

fn config_of(model: &std::path::Path) -> serde_json::Value {
    let (_, meta) = rbm::modelfile::load_model(model).unwrap();
    serde_json::from_str(&meta["config"]).unwrap()
}

#[test]
fn recipe_flags_are_recorded_in_the_model_and_bad_values_refused() {
    let d = watched_out("recipe-flags");
    let run = d.join("run");
    let quick =
        ["--train-size", "200", "--epochs", "2", "--hidden", "20", "-k", "1", "--samples", "1", "--plot-every", "2"];
    let out = rbm()
        .args(["train", "--out", run.to_str().unwrap()])
        .args(quick)
        .args(["--momentum", "0.5", "--final-momentum", "0.9", "--momentum-epochs", "1", "--weight-decay", "0.001"])
        .args(["--lr-schedule", "linear", "--final-lr", "0.01", "--sparsity-target", "0.1", "--init", "guide"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c = config_of(&run.join("model.safetensors"));
    assert_eq!((c["momentum"].as_f64(), c["final_momentum"].as_f64()), (Some(0.5), Some(0.9)));
    assert_eq!((c["momentum_epochs"].as_u64(), c["lr_schedule"].as_str()), (Some(1), Some("linear")));
    assert_eq!((c["init"].as_str(), c["sparsity_target"].as_f64()), (Some("guide"), Some(0.1)));
    let o = d.join("never");
    let o = o.to_str().unwrap();
    let bad = |extra: &[&str], needles: &[&str]| {
        let mut args = vec!["train", "--out", o];
        args.extend(quick);
        args.extend(extra);
        fails(&args, needles, &d);
    };
    bad(&["--momentum", "1"], &["--momentum", "[0, 1)"]);
    bad(&["--weight-decay", "-1"], &["--weight-decay", "0 or more"]);
    bad(&["--lr-schedule", "exponential"], &["--final-lr", "positive final rate"]);
    bad(&["--sparsity-target", "1.5"], &["--sparsity-target", "between 0 and 1"]);
    bad(&["--preset", "quality"], &["--preset", "cannot be used with"]);
}
