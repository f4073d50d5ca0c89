"""Dynamic Convolution Decomposition (Li et al., ICLR 2021, arXiv 2103.08756)."""
