# bench/: benchmarks, run by hand; each prints ratios against peers measured in the same run.
# None exists yet: the first comes with sctpmd.
