# tests/: Check unit suites (one per module) and integration tests that start real daemons.
# Every test runs through tests/run-test (a fresh directory, reaping of every process it started).
TEST_EXTENSIONS = .sh
LOG_COMPILER = $(top_srcdir)/tests/run-test
SH_LOG_COMPILER = $(top_srcdir)/tests/run-test
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)'; top_builddir='$(abs_top_builddir)'; \
	SCTPM_VALGRIND='$(SCTPM_VALGRIND)'; VALGRIND='$(VALGRIND)'; \
	export top_srcdir top_builddir SCTPM_VALGRIND VALGRIND;

UNIT_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
UNIT_LIBS = common/libcommon.la $(CHECK_LIBS)

unit_tests = \
	tests/unit/check_base64 \
	tests/unit/check_io \
	tests/unit/check_log \
	tests/unit/check_rc \
	tests/unit/check_sas \
	tests/unit/check_urlenc
check_PROGRAMS += $(unit_tests) tests/freeport tests/testd tests/rawsend tests/tpm-client tests/ptybridge \
	tests/nv-crash
tests_tpm_client_CFLAGS = $(AM_CFLAGS) $(TSS2_ESYS_CFLAGS) $(TSS2_TCTILDR_CFLAGS) $(CRYPTO_CFLAGS)
tests_tpm_client_LDADD = $(TSS2_ESYS_LIBS) $(TSS2_TCTILDR_LIBS) $(CRYPTO_LIBS)
tests_nv_crash_CFLAGS = $(tests_tpm_client_CFLAGS)
tests_nv_crash_LDADD = $(tests_tpm_client_LDADD)
TESTS += $(unit_tests)

tests_unit_check_base64_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_base64_LDADD = $(UNIT_LIBS)
tests_unit_check_io_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_io_LDADD = $(UNIT_LIBS) -lpthread
tests_unit_check_log_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_log_LDADD = $(UNIT_LIBS)
tests_unit_check_rc_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_rc_LDADD = $(UNIT_LIBS)
tests_unit_check_sas_CPPFLAGS = $(UNIT_CPPFLAGS) $(CRYPTO_CFLAGS)
tests_unit_check_sas_LDADD = $(UNIT_LIBS) $(CRYPTO_LIBS)
tests_unit_check_urlenc_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_urlenc_LDADD = $(UNIT_LIBS)

integration_tests = \
	tests/integration/harness.sh \
	tests/integration/crashloop.sh \
	tests/integration/emulator-crash.sh \
	tests/integration/emulator-garbage.sh \
	tests/integration/emulator-identity.sh \
	tests/integration/emulator-rm.sh \
	tests/integration/emulator-state.sh \
	tests/integration/emulator-swtpm-ctrl.sh \
	tests/integration/emulator-tools.sh \
	tests/integration/shim-auto.sh \
	tests/integration/shim-input.sh \
	tests/integration/shim-lib.sh \
	tests/integration/shim-provision.sh \
	tests/integration/shim-srk.sh \
	tests/integration/shim-status.sh \
	tests/integration/shim-tcti.sh \
	tests/integration/security.sh \
	tests/integration/soak.sh
TESTS += $(integration_tests)

crashloop_scripts = tests/crashloop/lib.sh tests/crashloop/sctpmd.sh tests/crashloop/client.sh
EXTRA_DIST += $(crashloop_scripts) tests/soak/soak.sh tests/by-hand.sh
EXTRA_DIST += tests/run-test tests/integration/lib.sh tests/integration/sas-verify.py tests/integration/secret-scan.py \
	tests/integration/utpm-client.py tests/integration/tpm-mitm.py \
	$(integration_tests)

# The unit suites alone (CI runs them again in the sanitizer build).
check-unit:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(unit_tests)'
.PHONY: check-unit

# The crash loops of issue #9 at full length (tests/crashloop/, docs/testing.md "Crash loops"):
# sctpmd and then sctpm-client, each killed with SIGKILL in 200 rounds. make check runs ten rounds
# of each (tests/integration/crashloop.sh). CRASHLOOP_FLAGS passes options, e.g.
# `make crashloop CRASHLOOP_FLAGS='--rounds 1000 --seed 42'`.
CRASHLOOP_FLAGS =
crashloop_env = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	SCTPM_VALGRIND='$(SCTPM_VALGRIND)' VALGRIND='$(VALGRIND)'
crashloop-sctpmd crashloop-client: all $(check_PROGRAMS)
	$(crashloop_env) $(top_srcdir)/tests/run-test $(top_srcdir)/tests/crashloop/$(@:crashloop-%=%).sh \
		$(CRASHLOOP_FLAGS)
crashloop: all $(check_PROGRAMS)
	@st=0; for loop in sctpmd client; do \
		$(crashloop_env) $(top_srcdir)/tests/run-test $(top_srcdir)/tests/crashloop/$$loop.sh \
			$(CRASHLOOP_FLAGS) || st=1; \
	done; exit $$st
check-crashloop: crashloop
.PHONY: crashloop crashloop-sctpmd crashloop-client check-crashloop

# The soak of issue #9 (tests/soak/soak.sh, docs/testing.md "Soak"): 16 clients of mixed work for
# SOAK_SECONDS (default ten minutes); make check runs it for 10 s (tests/integration/soak.sh).
# SOAK_FLAGS passes options, e.g. `make soak SOAK_SECONDS=60 SOAK_FLAGS='--keep /tmp/soak'`.
SOAK_SECONDS = 600
SOAK_FLAGS =
soak: all $(check_PROGRAMS)
	$(crashloop_env) $(top_srcdir)/tests/run-test $(top_srcdir)/tests/soak/soak.sh \
		--duration $(SOAK_SECONDS) $(SOAK_FLAGS)
check-soak: soak
.PHONY: soak check-soak
