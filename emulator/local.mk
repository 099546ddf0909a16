# emulator/: sctpmd, the libtpms TPM 2.0 service. The service is a noinst library that the tests
# link; sctpmd's main.c only parses options.
noinst_LTLIBRARIES += emulator/libemulator.la
emulator_libemulator_la_SOURCES = \
	emulator/daemon.c emulator/daemon.h \
	emulator/esysdl.c emulator/esysdl.h \
	emulator/mfg.c emulator/mfg.h \
	emulator/nvstore.c emulator/nvstore.h \
	emulator/proto.c emulator/proto.h \
	emulator/rm.c emulator/rm.h \
	emulator/server.c emulator/server.h \
	emulator/tpm.c emulator/tpm.h
emulator_libemulator_la_CPPFLAGS = $(AM_CPPFLAGS) $(LIBTPMS_CFLAGS) $(TSS2_ESYS_CFLAGS) \
	$(TSS2_MU_CFLAGS) $(CRYPTO_CFLAGS)
# Not $(TSS2_ESYS_LIBS): the manufacturing child loads ESAPI with dlopen() (esysdl.h), so the
# daemon never maps it.
emulator_libemulator_la_LIBADD = common/libcommon.la $(LIBTPMS_LIBS) $(TSS2_MU_LIBS) $(CRYPTO_LIBS)

sbin_PROGRAMS += emulator/sctpmd
emulator_sctpmd_SOURCES = emulator/main.c
emulator_sctpmd_CPPFLAGS = $(emulator_libemulator_la_CPPFLAGS)
emulator_sctpmd_LDADD = emulator/libemulator.la

EMULATOR_TEST_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/emulator $(LIBTPMS_CFLAGS) $(TSS2_ESYS_CFLAGS) $(TSS2_MU_CFLAGS) \
	$(CRYPTO_CFLAGS)
EMULATOR_TEST_LIBS = emulator/libemulator.la $(TSS2_ESYS_LIBS) $(UNIT_LIBS)

emulator_unit_tests = tests/unit/check_proto tests/unit/check_nvstore tests/unit/check_tpm \
	tests/unit/check_rm tests/unit/check_mfg
check_PROGRAMS += $(emulator_unit_tests)
TESTS += $(emulator_unit_tests)
unit_tests += $(emulator_unit_tests)
tests_unit_check_proto_CPPFLAGS = $(EMULATOR_TEST_CPPFLAGS)
tests_unit_check_proto_LDADD = $(EMULATOR_TEST_LIBS)
tests_unit_check_nvstore_CPPFLAGS = $(EMULATOR_TEST_CPPFLAGS)
tests_unit_check_nvstore_LDADD = $(EMULATOR_TEST_LIBS)
tests_unit_check_tpm_CPPFLAGS = $(EMULATOR_TEST_CPPFLAGS)
tests_unit_check_tpm_LDADD = $(EMULATOR_TEST_LIBS)
tests_unit_check_rm_CPPFLAGS = $(EMULATOR_TEST_CPPFLAGS)
tests_unit_check_rm_LDADD = $(EMULATOR_TEST_LIBS)
tests_unit_check_mfg_CPPFLAGS = $(EMULATOR_TEST_CPPFLAGS)
tests_unit_check_mfg_LDADD = $(EMULATOR_TEST_LIBS)
