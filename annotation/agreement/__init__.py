"""Inter-annotator agreement on rankings: pure numpy/scipy, no Django. See docs/agreement.md."""

from annotation.agreement.alpha import (
    alpha_from_coincidences,
    alpha_from_reliability_data,
    alpha_long,
    alpha_parts,
    coincidences,
    krippendorff_alpha,
)
from annotation.agreement.bootstrap import (
    alpha_ci,
    bootstrap_ci,
    bootstrap_sums,
    bootstrap_sums_ci,
    kendall_w_mean_ci,
    pairwise_agreement_ci,
    resample_table,
)
from annotation.agreement.consensus import (
    Consensus,
    bradley_terry,
    consensus_ranking,
    elo_ratings,
    model_leaderboard,
    model_win_parts,
)
from annotation.agreement.flags import flag_alpha, flag_counts, flag_kappa, fleiss_kappa
from annotation.agreement.kendall import kendall_w, kendall_w_mean, kendall_w_parts
from annotation.agreement.labelers import (
    Outlier,
    RankingAgreement,
    consensus_agreement,
    holm,
    labeler_scores,
    outlier_labelers,
    outlier_tests,
)
from annotation.agreement.pairwise import (
    RankedPairs,
    pairwise_agreement,
    pairwise_agreement_by_prompt,
    pairwise_counts,
    pairwise_parts,
    ranked_pairs,
)
from annotation.agreement.table import RankTable, factorize

__all__ = [
    "Consensus",
    "Outlier",
    "RankTable",
    "RankedPairs",
    "RankingAgreement",
    "alpha_ci",
    "alpha_from_coincidences",
    "alpha_from_reliability_data",
    "alpha_long",
    "alpha_parts",
    "bootstrap_ci",
    "bootstrap_sums",
    "bootstrap_sums_ci",
    "bradley_terry",
    "coincidences",
    "consensus_agreement",
    "consensus_ranking",
    "elo_ratings",
    "factorize",
    "flag_alpha",
    "flag_counts",
    "flag_kappa",
    "fleiss_kappa",
    "holm",
    "kendall_w",
    "kendall_w_mean",
    "kendall_w_mean_ci",
    "kendall_w_parts",
    "krippendorff_alpha",
    "labeler_scores",
    "model_leaderboard",
    "model_win_parts",
    "outlier_labelers",
    "outlier_tests",
    "pairwise_agreement",
    "pairwise_agreement_by_prompt",
    "pairwise_agreement_ci",
    "pairwise_counts",
    "pairwise_parts",
    "ranked_pairs",
    "resample_table",
]
