"""VALUE (Li et al., NeurIPS 2021 Datasets and Benchmarks, arXiv 2106.04632): the benchmark's scorer for its 11
video-and-language tasks, loaders for its data release, a HERO-style baseline trained single-task, all-task and
all-task-then-single-task, and an embedded procedurally generated mini-VALUE in the release format."""
