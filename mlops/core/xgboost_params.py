"""The hyperparameter names XGBoost 3.2 knows, for checking config before anything trains.

XGBoost warns about an unknown parameter (`max_dept`) and trains on with the default,
so a typo costs a whole pipeline run and fails at the gate. The names below are what
`Booster.save_config()` reports across boosters and objectives, plus the aliases
XGBoost accepts and the train step's own arguments; `tests/unit/test_config_errors.py`
checks them against the installed xgboost, so the list cannot silently go stale.
Kept as data so that loading a config does not import xgboost (about a second).
"""

from __future__ import annotations

import difflib

TRAIN_ARGUMENTS = frozenset({"num_round", "early_stopping_rounds"})  # xgboost.train's, not params

XGBOOST_PARAMS = frozenset(
    {
        "alpha", "base_score", "boost_from_average", "booster", "colsample_bylevel",
        "colsample_bynode", "colsample_bytree", "debug_synchronize", "device",
        "disable_default_eval_metric", "eta", "eval_metric", "fail_on_invalid_gpu_id",
        "feature_selector", "gamma", "grow_policy", "huber_slope", "interaction_constraints",
        "lambda", "learning_rate", "max_bin", "max_cached_hist_node", "max_cat_threshold",
        "max_cat_to_onehot", "max_delta_step", "max_depth", "max_leaves", "max_row_perbatch",
        "min_child_weight", "min_split_loss", "monotone_constraints", "multi_strategy",
        "n_jobs", "normalize_type", "nthread", "num_class", "num_feature", "num_parallel_tree",
        "num_target", "objective", "one_drop", "process_type", "random_state", "rate_drop",
        "refresh_leaf", "reg_alpha", "reg_lambda", "sample_type", "sampling_method",
        "scale_pos_weight", "seed", "seed_per_iteration", "skip_drop", "sparse_threshold",
        "subsample", "tolerance", "top_k", "tree_method", "tweedie_variance_power", "updater",
        "validate_parameters", "verbosity", "quantile_alpha", "aft_loss_distribution",
        "aft_loss_distribution_scale", "lambdarank_pair_method", "lambdarank_num_pair_per_sample",
        "lambdarank_unbiased", "lambdarank_bias_norm", "ndcg_exp_gain", "use_rmm",
    }
)  # fmt: skip


def unknown_hyperparameter(names: list[str]) -> str | None:
    """A one-line reason for the first name XGBoost does not know (with "did you mean"),
    or None when all are known."""
    known = XGBOOST_PARAMS | TRAIN_ARGUMENTS
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{name!r} is not an XGBoost parameter{hint}"
    return None
