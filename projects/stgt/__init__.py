"""TransMOT: spatial-temporal graph transformer for multi-object tracking, its cascade association and the
SORT / ByteTrack-style baselines, with the MOTChallenge evaluation (Chu et al., arXiv 2104.00194)."""
