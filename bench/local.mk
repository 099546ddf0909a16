# bench/: benchmarks, run by hand (never in make check: these machines are shared and noisy).
# Each prints figures for sctpmd and its peers measured in the same run, and their ratios.
noinst_PROGRAMS += bench/tpmbench
bench_tpmbench_CFLAGS = $(AM_CFLAGS) $(TSS2_ESYS_CFLAGS) $(TSS2_MU_CFLAGS) $(TSS2_TCTILDR_CFLAGS)
bench_tpmbench_LDADD = $(TSS2_ESYS_LIBS) $(TSS2_MU_LIBS) $(TSS2_TCTILDR_LIBS)
# The relay behind the "ceiling" row of bench/emulator.sh: plain C, no TSS.
noinst_PROGRAMS += bench/replaytpm
noinst_PROGRAMS += bench/tokenbench
bench_tokenbench_LDADD = shim/libsctpm.la
EXTRA_DIST += bench/run bench/lib.sh bench/emulator.sh bench/rm.sh bench/token.sh bench/client.sh \
	bench/hub-bench.sh bench/README.md
