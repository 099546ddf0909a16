# hub/: sctpm-hub, a local Azure IoT Hub device endpoint: IoT Hub's device HTTPS API on
# libmicrohttpd, SAS verification as Azure does it, and a SQLite registry and message store.
# main.c and cli.c are the tool; everything else is libhub, which the unit tests link.
HUB_CPPFLAGS = $(AM_CPPFLAGS) $(MHD_CFLAGS) $(SQLITE_CFLAGS) $(JSONC_CFLAGS) $(CRYPTO_CFLAGS)
HUB_LIBS = $(MHD_LIBS) $(SQLITE_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS) -lpthread

noinst_LTLIBRARIES += hub/libhub.la
hub_libhub_la_SOURCES = \
	hub/format.c hub/format-priv.h \
	hub/message.c hub/message-priv.h \
	hub/sas.c hub/sas-priv.h \
	hub/server.c hub/server-priv.h \
	hub/store.c hub/store-priv.h \
	hub/tls.c hub/tls-priv.h \
	hub/util.c hub/util-priv.h
hub_libhub_la_CPPFLAGS = $(HUB_CPPFLAGS)
hub_libhub_la_LIBADD = common/libcommon.la $(HUB_LIBS)

sbin_PROGRAMS += hub/sctpm-hub
hub_sctpm_hub_SOURCES = hub/main.c hub/cli.c hub/cli-priv.h
hub_sctpm_hub_CPPFLAGS = $(HUB_CPPFLAGS)
hub_sctpm_hub_LDADD = hub/libhub.la $(HUB_LIBS)

dist_man_MANS += docs/sctpm-hub.8
EXTRA_DIST += docs/hub.md bench/hub-bench.sh

# Unit suites, one per hub module.
hub_unit_tests = \
	tests/unit/check_hub_format \
	tests/unit/check_hub_message \
	tests/unit/check_hub_sas \
	tests/unit/check_hub_store \
	tests/unit/check_hub_tls \
	tests/unit/check_hub_util
check_PROGRAMS += $(hub_unit_tests)
TESTS += $(hub_unit_tests)
unit_tests += $(hub_unit_tests)
HUB_UNIT_CPPFLAGS = $(HUB_CPPFLAGS) $(CHECK_CFLAGS) -I$(top_srcdir)/hub
HUB_UNIT_LIBS = hub/libhub.la $(HUB_LIBS) $(CHECK_LIBS)
tests_unit_check_hub_format_CPPFLAGS = $(HUB_UNIT_CPPFLAGS)
tests_unit_check_hub_format_LDADD = $(HUB_UNIT_LIBS)
tests_unit_check_hub_message_CPPFLAGS = $(HUB_UNIT_CPPFLAGS)
tests_unit_check_hub_message_LDADD = $(HUB_UNIT_LIBS)
tests_unit_check_hub_sas_CPPFLAGS = $(HUB_UNIT_CPPFLAGS)
tests_unit_check_hub_sas_LDADD = $(HUB_UNIT_LIBS)
tests_unit_check_hub_store_CPPFLAGS = $(HUB_UNIT_CPPFLAGS)
tests_unit_check_hub_store_LDADD = $(HUB_UNIT_LIBS)
tests_unit_check_hub_tls_CPPFLAGS = $(HUB_UNIT_CPPFLAGS)
tests_unit_check_hub_tls_LDADD = $(HUB_UNIT_LIBS)
tests_unit_check_hub_util_CPPFLAGS = $(HUB_UNIT_CPPFLAGS)
tests_unit_check_hub_util_LDADD = $(HUB_UNIT_LIBS)

# The libcurl device client the integration tests and the benchmark drive the hub with. It
# shares no code with the hub: its tokens and requests are an independent implementation.
check_PROGRAMS += tests/hub-client
tests_hub_client_SOURCES = tests/hub-client.c
tests_hub_client_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) $(CRYPTO_CFLAGS)
tests_hub_client_LDADD = common/libcommon.la $(CURL_LIBS) $(CRYPTO_LIBS) -lpthread

# Integration tests: real hubs on free loopback ports, driven by curl and tests/hub-client.
hub_integration_tests = \
	tests/integration/hub-api.sh \
	tests/integration/hub-auth.sh \
	tests/integration/hub-c2d.sh \
	tests/integration/hub-cli.sh \
	tests/integration/hub-input.sh \
	tests/integration/hub-libcurl.sh \
	tests/integration/hub-restart.sh \
	tests/integration/hub-tls.sh
TESTS += $(hub_integration_tests)
EXTRA_DIST += $(hub_integration_tests) tests/integration/hub-lib.sh

# The hub's unit suites alone.
check-hub-unit:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(hub_unit_tests)'
# Every hub test.
check-hub:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(hub_unit_tests) $(hub_integration_tests)'
.PHONY: check-hub-unit check-hub
