# shim/: libsctpm (the public library), the sctpm CLI, the TPM CA bundle and the sctpm TCTI
# module.

# ---- select and the sctpm TCTI module ------------------------------------------------------------
# libselect.la: the sctpm order of TPMs (shim/select.h), linked by the TCTI module and by libsctpm.
# It does not pull in common/libcommon.la, so that a library linking both gets it once: link
# common/libcommon.la yourself. SCTPM_SCTPMD_PATH is the sctpmd the embedded default starts.
noinst_LTLIBRARIES += shim/libselect.la
shim_libselect_la_SOURCES = shim/select.c shim/select.h shim/select-priv.h
shim_libselect_la_CPPFLAGS = $(AM_CPPFLAGS) $(TSS2_TCTILDR_CFLAGS) \
	-DSCTPM_SCTPMD_PATH='"$(sbindir)/sctpmd"'
shim_libselect_la_LIBADD = $(TSS2_TCTILDR_LIBS)

# libtss2-tcti-sctpm.so.0: what tctildr loads for `-T sctpm`. Only Tss2_Tcti_Info is exported.
lib_LTLIBRARIES += shim/libtss2-tcti-sctpm.la
shim_libtss2_tcti_sctpm_la_SOURCES = shim/tcti-sctpm.c
shim_libtss2_tcti_sctpm_la_CPPFLAGS = $(AM_CPPFLAGS) $(TSS2_TCTILDR_CFLAGS)
shim_libtss2_tcti_sctpm_la_LIBADD = shim/libselect.la common/libcommon.la $(TSS2_TCTILDR_LIBS)
shim_libtss2_tcti_sctpm_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined \
	-Wl,--version-script=$(srcdir)/shim/tcti-sctpm.map
EXTRA_shim_libtss2_tcti_sctpm_la_DEPENDENCIES = shim/tcti-sctpm.map
EXTRA_DIST += shim/tcti-sctpm.map

SELECT_TEST_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/shim $(TSS2_TCTILDR_CFLAGS)
SELECT_TEST_LIBS = shim/libselect.la $(UNIT_LIBS) $(TSS2_TCTILDR_LIBS)

check_PROGRAMS += tests/unit/check_select tests/tcti-which
TESTS += tests/unit/check_select
unit_tests += tests/unit/check_select
tests_unit_check_select_CPPFLAGS = $(SELECT_TEST_CPPFLAGS)
tests_unit_check_select_LDADD = $(SELECT_TEST_LIBS)
# tcti-which: prints what select_tcti() chose and why, and runs a command through it.
tests_tcti_which_CPPFLAGS = $(SELECT_TEST_CPPFLAGS)
tests_tcti_which_LDADD = shim/libselect.la common/libcommon.la $(TSS2_TCTILDR_LIBS)
# ---- end of select and the sctpm TCTI module -----------------------------------------------------

# ---- libsctpm and the sctpm CLI ------------------------------------------------------------------
# The library's code is the noinst libsctpm-core, which the CLI and the unit tests link
# statically; libsctpm.la wraps it and exports only the sctpm_* API (shim/libsctpm.map).
SHIM_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/shim $(TSS2_ESYS_CFLAGS) $(TSS2_MU_CFLAGS) \
	$(TSS2_RC_CFLAGS) $(TSS2_TCTILDR_CFLAGS) $(CRYPTO_CFLAGS) \
	-DSCTPM_TPM_CA_BUNDLE='"$(pkgdatadir)/tpm-ca-bundle.pem"' \
	-DSCTPM_TPM_CA_DIR='"$(sysconfdir)/sctpm/tpm-ca.d"'
SHIM_LIBS = $(TSS2_ESYS_LIBS) $(TSS2_MU_LIBS) $(TSS2_RC_LIBS) $(TSS2_TCTILDR_LIBS) $(CRYPTO_LIBS) \
	-lpthread

noinst_LTLIBRARIES += shim/libsctpm-core.la
shim_libsctpm_core_la_SOURCES = \
	shim/connstr.c shim/connstr.h \
	shim/ctx.c shim/ctx-priv.h \
	shim/dup.c shim/dup.h \
	shim/slot.c \
	shim/status.c \
	shim/token.c
shim_libsctpm_core_la_CPPFLAGS = $(SHIM_CPPFLAGS)
shim_libsctpm_core_la_LIBADD = shim/libselect.la common/libcommon.la $(SHIM_LIBS)

lib_LTLIBRARIES += shim/libsctpm.la
shim_libsctpm_la_SOURCES =
shim_libsctpm_la_LIBADD = shim/libsctpm-core.la
shim_libsctpm_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 \
	-Wl,--version-script=$(top_srcdir)/shim/libsctpm.map
EXTRA_shim_libsctpm_la_DEPENDENCIES = shim/libsctpm.map
sctpminclude_HEADERS += include/sctpm/sctpm.h

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = shim/sctpm.pc
CLEANFILES += shim/sctpm.pc
shim/sctpm.pc: shim/sctpm.pc.in Makefile
	$(AM_V_GEN)$(MKDIR_P) shim && sed -e 's|@prefix[@]|$(prefix)|g' \
		-e 's|@exec_prefix[@]|$(exec_prefix)|g' -e 's|@libdir[@]|$(libdir)|g' \
		-e 's|@includedir[@]|$(includedir)|g' -e 's|@VERSION[@]|$(VERSION)|g' \
		$(top_srcdir)/shim/sctpm.pc.in > $@

# The TPM manufacturers' EK CAs that `sctpm status` trusts; users add theirs in tpm-ca.d.
dist_pkgdata_DATA = shim/tpm-ca-bundle.pem

bin_PROGRAMS += shim/sctpm
shim_sctpm_SOURCES = shim/main.c shim/cli.c shim/cli.h
shim_sctpm_CPPFLAGS = $(SHIM_CPPFLAGS)
shim_sctpm_LDADD = shim/libsctpm-core.la

EXTRA_DIST += shim/libsctpm.map shim/sctpm.pc.in

# Unit suites of the shim's pure parts (the TPM-facing parts are covered by shim-*.sh).
shim_unit_tests = tests/unit/check_connstr tests/unit/check_dup
check_PROGRAMS += $(shim_unit_tests)
TESTS += $(shim_unit_tests)
unit_tests += $(shim_unit_tests)
tests_unit_check_connstr_CPPFLAGS = $(UNIT_CPPFLAGS) $(SHIM_CPPFLAGS)
tests_unit_check_connstr_LDADD = shim/libsctpm-core.la $(UNIT_LIBS)
tests_unit_check_dup_CPPFLAGS = $(UNIT_CPPFLAGS) $(SHIM_CPPFLAGS)
tests_unit_check_dup_LDADD = shim/libsctpm-core.la $(UNIT_LIBS)

# A test program of the public API (threads sharing a context, handles made stale by others).
check_PROGRAMS += tests/sctpm-lib
tests_sctpm_lib_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS)
tests_sctpm_lib_LDADD = shim/libsctpm.la $(CRYPTO_LIBS) -lpthread
