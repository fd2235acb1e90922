"""Benchmarks of jaxnet: ``python -m benchmarks.train_throughput`` (see benchmarks/README.md)."""
