# shim/: libsctpm (the public library), the sctpm CLI, and the TPM CA bundle.
# The library's code is the noinst libsctpm-core, which the CLI and the unit tests link
# statically; libsctpm.la wraps it and exports only the sctpm_* API (shim/libsctpm.map).
SHIM_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/shim $(TSS2_ESYS_CFLAGS) $(TSS2_RC_CFLAGS) \
	$(TSS2_TCTILDR_CFLAGS) $(CRYPTO_CFLAGS) \
	-DSCTPM_TPM_CA_BUNDLE='"$(pkgdatadir)/tpm-ca-bundle.pem"' \
	-DSCTPM_TPM_CA_DIR='"$(sysconfdir)/sctpm/tpm-ca.d"'
SHIM_LIBS = $(TSS2_ESYS_LIBS) $(TSS2_RC_LIBS) $(TSS2_TCTILDR_LIBS) $(CRYPTO_LIBS) -lpthread

noinst_LTLIBRARIES += shim/libsctpm-core.la
shim_libsctpm_core_la_SOURCES = \
	shim/connstr.c shim/connstr.h \
	shim/ctx.c shim/ctx-priv.h \
	shim/select.c shim/select.h \
	shim/slot.c \
	shim/status.c \
	shim/token.c
shim_libsctpm_core_la_CPPFLAGS = $(SHIM_CPPFLAGS)
shim_libsctpm_core_la_LIBADD = common/libcommon.la $(SHIM_LIBS)

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
shim_unit_tests = tests/unit/check_connstr
check_PROGRAMS += $(shim_unit_tests)
TESTS += $(shim_unit_tests)
unit_tests += $(shim_unit_tests)
tests_unit_check_connstr_CPPFLAGS = $(UNIT_CPPFLAGS) $(SHIM_CPPFLAGS)
tests_unit_check_connstr_LDADD = shim/libsctpm-core.la $(UNIT_LIBS)

# A test program of the public API (threads sharing a context, handles made stale by others).
check_PROGRAMS += tests/sctpm-lib
tests_sctpm_lib_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS)
tests_sctpm_lib_LDADD = shim/libsctpm.la $(CRYPTO_LIBS) -lpthread
