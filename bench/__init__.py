"""Benchmarks of Streamport's memory use and throughput; see ``bench/README.md``."""
