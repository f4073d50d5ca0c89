"""AutoMix: a learned mixup policy with a Mix Block and a momentum pipeline (Liu et al., ECCV 2022,
arXiv 2103.13027)."""
