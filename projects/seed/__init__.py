"""SEED: self-supervised distillation for small models (Fang et al., ICLR 2021, arXiv 2101.04731)."""
