"""The reference PyTorch trainer for pairgen shards: ``python train/fit.py SHARDS --out RUN``."""
