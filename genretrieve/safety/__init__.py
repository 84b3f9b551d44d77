"""The harmful-query filter: a probe on what a search computes anyway, with a threshold users can re-set.

- probe.py: the standardised logistic probe on feature blocks (adapter states, gen, teacher) and its file;
- features.py: the probe's verdict on a batch of queries, from the query blocks search computes (query_vectors);
- data.py: the fitting, calibration and test sets, and how each text's part is fixed;
- fit.py: fitting, choosing the feature set on a validation split, setting the threshold;
- calibrate.py: the threshold for a stated false-flag rate, and the user calibration file search applies.
"""
from .calibrate import CALIBRATION_FILE, calibrate_safety, describe, load_probe, threshold_for  # noqa: F401
from .features import probe_flags, probe_scores  # noqa: F401
from .probe import PROBE_FILE, SafetyProbe, auroc  # noqa: F401
