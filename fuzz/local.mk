# fuzz/: libFuzzer targets, one per surface that reads untrusted bytes (see fuzz/fuzz.h). With
# --enable-fuzzing (clang) they are libFuzzer programs and every library is instrumented for
# them; otherwise they are plain programs that replay files (fuzz/replay.c). Either way
# fuzz/check.sh runs them in `make check`: it replays the seed corpora (fuzz/corpus/NAME) and
# every input that once crashed a target (fuzz/regress/NAME), and with libFuzzer fuzzes each for
# a few seconds. fuzz/run-long is the long run, by hand. docs/testing.md has the details.
fuzz_targets = \
	fuzz/fuzz_connstr \
	fuzz/fuzz_hub_request \
	fuzz/fuzz_mssim \
	fuzz/fuzz_nvstore \
	fuzz/fuzz_rm \
	fuzz/fuzz_sas \
	fuzz/fuzz_swtpm_ctrl
check_PROGRAMS += $(fuzz_targets)

if FUZZING
FUZZ_MAIN =
FUZZ_MODE = libfuzzer
else
FUZZ_MAIN = fuzz/replay.c
FUZZ_MODE = replay
endif
FUZZ_SOURCES = fuzz/fuzz.c fuzz/fuzz.h $(FUZZ_MAIN)
FUZZ_LINK = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
FUZZ_EMU_CPPFLAGS = $(EMULATOR_TEST_CPPFLAGS) -I$(top_srcdir)/fuzz
FUZZ_HUB_CPPFLAGS = $(HUB_CPPFLAGS) -I$(top_srcdir)/hub -I$(top_srcdir)/fuzz

fuzz_fuzz_connstr_SOURCES = fuzz/fuzz_connstr.c $(FUZZ_SOURCES)
fuzz_fuzz_connstr_CPPFLAGS = $(SHIM_CPPFLAGS) -I$(top_srcdir)/fuzz
fuzz_fuzz_connstr_LDADD = shim/libsctpm-core.la
fuzz_fuzz_connstr_LDFLAGS = $(FUZZ_LINK)

fuzz_fuzz_hub_request_SOURCES = fuzz/fuzz_hub_request.c $(FUZZ_SOURCES)
fuzz_fuzz_hub_request_CPPFLAGS = $(FUZZ_HUB_CPPFLAGS)
fuzz_fuzz_hub_request_LDADD = hub/libhub.la $(HUB_LIBS)
fuzz_fuzz_hub_request_LDFLAGS = $(FUZZ_LINK)

fuzz_fuzz_sas_SOURCES = fuzz/fuzz_sas.c $(FUZZ_SOURCES)
fuzz_fuzz_sas_CPPFLAGS = $(FUZZ_HUB_CPPFLAGS)
fuzz_fuzz_sas_LDADD = hub/libhub.la $(HUB_LIBS)
fuzz_fuzz_sas_LDFLAGS = $(FUZZ_LINK)

fuzz_fuzz_mssim_SOURCES = fuzz/fuzz_mssim.c fuzz/emu.c fuzz/emu.h $(FUZZ_SOURCES)
fuzz_fuzz_mssim_CPPFLAGS = $(FUZZ_EMU_CPPFLAGS)
fuzz_fuzz_mssim_LDADD = emulator/libemulator.la
fuzz_fuzz_mssim_LDFLAGS = $(FUZZ_LINK)

fuzz_fuzz_swtpm_ctrl_SOURCES = fuzz/fuzz_swtpm_ctrl.c fuzz/emu.c fuzz/emu.h $(FUZZ_SOURCES)
fuzz_fuzz_swtpm_ctrl_CPPFLAGS = $(FUZZ_EMU_CPPFLAGS)
fuzz_fuzz_swtpm_ctrl_LDADD = emulator/libemulator.la
fuzz_fuzz_swtpm_ctrl_LDFLAGS = $(FUZZ_LINK)

# The RM's calls into the TPM pass through the target, which can answer in libtpms' place.
fuzz_fuzz_rm_SOURCES = fuzz/fuzz_rm.c fuzz/emu.c fuzz/emu.h $(FUZZ_SOURCES)
fuzz_fuzz_rm_CPPFLAGS = $(FUZZ_EMU_CPPFLAGS)
fuzz_fuzz_rm_LDADD = emulator/libemulator.la
fuzz_fuzz_rm_LDFLAGS = $(FUZZ_LINK) -Wl,--wrap=tpm_execute

fuzz_fuzz_nvstore_SOURCES = fuzz/fuzz_nvstore.c $(FUZZ_SOURCES)
fuzz_fuzz_nvstore_CPPFLAGS = $(FUZZ_EMU_CPPFLAGS)
fuzz_fuzz_nvstore_LDADD = emulator/libemulator.la
fuzz_fuzz_nvstore_LDFLAGS = $(FUZZ_LINK)

TESTS += fuzz/check.sh
AM_TESTS_ENVIRONMENT += SCTPM_FUZZ_MODE='$(FUZZ_MODE)'; export SCTPM_FUZZ_MODE;

# The seed corpora and the regression inputs go into the tarball whole: make check replays them.
EXTRA_DIST += fuzz/check.sh fuzz/run-long fuzz/mkcorpus fuzz/corpus fuzz/regress

# The fuzz tests alone.
check-fuzz:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=fuzz/check.sh
.PHONY: check-fuzz
