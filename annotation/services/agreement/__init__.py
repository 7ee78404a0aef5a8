"""A project's agreement report: loads current rankings from the database into arrays, then calls the pure
`annotation.agreement` package. Read-only.

Conventions (docs/agreement.md): units are (prompt, response); gold prompts are left out of the headline figures
(they measure labelers against a reference instead); labelers a manager excluded stay in the per-labeler table
(marked) but are left out of every project figure.

Performance (bench/agreement.py, 2,000,000 ranks): rows come from the database cursor straight into numpy arrays
(one packed integer per entry, ranking attributes once per ranking, flags only where there are any); per-prompt
statistics are computed once and shared by the figures, their bootstrap intervals (all drawn in one pass) and the
breakdowns. Every figure equals what the package's one-call functions (`ag.krippendorff_alpha`, `ag.*_ci`, ...)
give on the same rows.
"""

from annotation.services.agreement.loading import Loaded, rankings_load
from annotation.services.agreement.ratings import ratings_agreement_get
from annotation.services.agreement.report import agreement_report_get, headline

__all__ = ["Loaded", "agreement_report_get", "headline", "rankings_load", "ratings_agreement_get"]
