"""`parlour bench`: load and correctness benchmarks (the sub-app is `parlour.bench.cli.bench_app`)."""
