//! `rbm train`'s recipe flags (momentum, weight decay, learning-rate
//! schedules, sparsity, initialisation) and the presets that set them.

use crate::*;
use rbm::recipe::{Init, LrSchedule};

#[derive(Args, Clone)]
pub(crate) struct RecipeArgs {
    /// Momentum (0: none). With --final-momentum, the momentum of the first
    /// --momentum-epochs epochs only.
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    momentum: Option<f32>,
    /// The momentum after --momentum-epochs epochs (the practical guide: 0.5, then 0.9).
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    final_momentum: Option<f32>,
    /// Epochs at --momentum before --final-momentum takes over.
    #[arg(long, value_name = "N", default_value_t = 5)]
    momentum_epochs: usize,
    /// L2 weight decay: the weights' gradient gains -L W.
    #[arg(long, value_name = "L", allow_negative_numbers = true)]
    weight_decay: Option<f32>,
    /// How the learning rate moves from --lr (first update) to --final-lr (last).
    #[arg(long, value_enum, default_value = "constant")]
    lr_schedule: ScheduleArg,
    /// The last update's learning rate (linear and exponential schedules).
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    final_lr: Option<f32>,
    /// A target mean activation p for the hidden units: their biases' gradient
    /// gains -cost (q - p), q their mean over the minibatch.
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    sparsity_target: Option<f32>,
    /// The sparsity penalty's cost.
    #[arg(long, value_name = "C", default_value_t = 0.1, requires = "sparsity_target")]
    sparsity_cost: f32,
    /// How the parameters start: the tutorial's (W uniform, biases 0) or the
    /// practical guide's (W ~ N(0, 0.01^2), visible biases logit of the data's means).
    #[arg(long, value_enum, default_value = "tutorial")]
    init: InitArg,
    /// Persistent chains (PCD), when not one per minibatch row.
    #[arg(long, value_name = "N")]
    persistent_chains: Option<usize>,
    /// Parallel tempering with this many sets of persistent chains (2 or
    /// more), at inverse temperatures from 1 down to --beta-min; only the
    /// chains at 1 enter the gradient.
    #[arg(long, value_name = "M")]
    temperatures: Option<usize>,
    /// The lowest inverse temperature of parallel tempering.
    #[arg(long, value_name = "B", default_value_t = 0.1, requires = "temperatures")]
    beta_min: f32,
    /// Centring (Melchior, Fischer & Wiskott 2016): train with the gradient of
    /// the RBM centred at moving averages of the units' means; the saved model
    /// is the equivalent uncentred RBM.
    #[arg(long)]
    centering: bool,
    /// The offsets' moving-average rate per update (centring).
    #[arg(long, value_name = "R", default_value_t = 0.01, requires = "centering")]
    offset_rate: f32,
    /// A named recipe that sets every training flag at once (see the README;
    /// it conflicts with the flags it sets).
    #[arg(long, value_enum, conflicts_with_all = ["method", "k", "lr", "batch_size", "epochs", "hidden", "momentum", "final_momentum", "momentum_epochs", "weight_decay", "lr_schedule", "final_lr", "init", "centering", "offset_rate"])]
    pub preset: Option<PresetArg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScheduleArg {
    Constant,
    Linear,
    Exponential,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum InitArg {
    Tutorial,
    Guide,
}

/// The presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PresetArg {
    /// the best likelihood this tool reaches on MNIST in about half an hour
    Quality,
}

impl RecipeArgs {
    /// Sets the recipe's fields of `cfg` from the flags, or from the preset.
    pub(crate) fn apply(&self, cfg: &mut TrainConfig) {
        cfg.chains = self.persistent_chains;
        (cfg.temperatures, cfg.beta_min) = (self.temperatures.unwrap_or(0), self.beta_min);
        if let Some(p) = self.preset {
            preset(p, cfg);
            return;
        }
        let m = self.momentum.unwrap_or(0.0);
        (cfg.momentum, cfg.final_momentum) = (m, self.final_momentum.unwrap_or(m));
        cfg.momentum_epochs = if self.final_momentum.is_some() { self.momentum_epochs } else { 0 };
        cfg.weight_decay = self.weight_decay.unwrap_or(0.0);
        cfg.lr_schedule = match self.lr_schedule {
            ScheduleArg::Constant => LrSchedule::Constant,
            ScheduleArg::Linear => LrSchedule::Linear,
            ScheduleArg::Exponential => LrSchedule::Exponential,
        };
        cfg.final_lr = self.final_lr.unwrap_or(0.0);
        (cfg.sparsity_target, cfg.sparsity_cost) = (self.sparsity_target, self.sparsity_cost);
        cfg.init = match self.init {
            InitArg::Tutorial => Init::Tutorial,
            InitArg::Guide => Init::Guide,
        };
        (cfg.centering, cfg.offset_rate) = (self.centering, if self.centering { self.offset_rate } else { 0.0 });
    }
}

/// The preset's recipe, written out in the README.
fn preset(p: PresetArg, cfg: &mut TrainConfig) {
    match p {
        PresetArg::Quality => {
            // centred PCD-1 with 100 chains, the rate decaying linearly from 0.05 to 0.001
            (cfg.method, cfg.k, cfg.batch_size, cfg.epochs, cfg.n_hidden) = (Method::Pcd, 1, 100, 800, 500);
            (cfg.lr, cfg.lr_schedule, cfg.final_lr) = (0.05, LrSchedule::Linear, 0.001);
            (cfg.momentum, cfg.final_momentum, cfg.momentum_epochs) = (0.0, 0.0, 0);
            (cfg.centering, cfg.offset_rate) = (true, 0.01);
            (cfg.weight_decay, cfg.init) = (0.0, Init::Tutorial);
            cfg.preset = Some("quality".into());
        }
    }
}

/// The model a run starts from: the tutorial's initialisation, or the
/// guide's from the training rows `rows` (as the model sees them); with
/// centring, also the visible offsets to start from (the rows' means, over
/// `sigma` for Gaussian units).
pub(crate) fn initial_model(
    cfg: &TrainConfig,
    rows: &dyn DataRows,
    gaussian: bool,
    sigma: f32,
) -> Result<(Rbm, Option<Vec<f32>>)> {
    let nv = rows.n_cols();
    let sums = match cfg.init == Init::Guide || cfg.centering {
        true => Some(rbm::data::column_sums(rows, cfg.train_size)?.0),
        false => None,
    };
    let n = cfg.train_size as f64;
    let offsets = sums.as_ref().filter(|_| cfg.centering).map(|s| {
        let scale = if gaussian { sigma as f64 } else { 1.0 };
        s.iter().map(|s| (s / n / scale) as f32).collect()
    });
    let rbm = match cfg.init {
        Init::Tutorial => Rbm::init(nv, cfg.n_hidden, cfg.seed)?,
        Init::Guide => {
            let sums = sums.expect("column sums");
            let vbias = match gaussian {
                true => sums.iter().map(|s| (s / cfg.train_size as f64) as f32).collect(),
                false => rbm::recipe::guide_vbias(&sums, cfg.train_size),
            };
            rbm::recipe::guide_init(cfg.n_hidden, vbias, cfg.seed)?
        }
    };
    Ok((rbm, offsets))
}
