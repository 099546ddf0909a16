# shim/: libsctpm, the sctpm CLI and the sctpm TCTI module.

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
