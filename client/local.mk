# client/: sctpm-client, the IoT Hub device client. main.c parses options; everything else is
# the noinst libclient, which the unit suites link. It uses libsctpm through its public header
# only (include/sctpm/sctpm.h) and links the installed form, shim/libsctpm.la.
CLIENT_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) $(SQLITE_CFLAGS) $(JSONC_CFLAGS) $(SSL_CFLAGS) \
	$(CRYPTO_CFLAGS)
CLIENT_LIBS = shim/libsctpm.la common/libcommon.la $(CURL_LIBS) $(SQLITE_LIBS) $(JSONC_LIBS) \
	$(SSL_LIBS) $(CRYPTO_LIBS)

noinst_LTLIBRARIES += client/libclient.la
client_libclient_la_SOURCES = \
	client/backoff.c client/backoff-priv.h \
	client/client.c client/client-priv.h \
	client/deliver.c client/deliver-priv.h \
	client/http.c client/http-priv.h \
	client/hubapi.c client/hubapi-priv.h \
	client/msg.c client/msg-priv.h \
	client/queue.c client/queue-priv.h \
	client/run.c \
	client/token.c client/token-priv.h \
	client/tpm.c client/tpm-priv.h
client_libclient_la_CPPFLAGS = $(CLIENT_CPPFLAGS)
client_libclient_la_LIBADD = $(CLIENT_LIBS)

bin_PROGRAMS += client/sctpm-client
client_sctpm_client_SOURCES = client/main.c
client_sctpm_client_CPPFLAGS = $(CLIENT_CPPFLAGS)
client_sctpm_client_LDADD = client/libclient.la $(CLIENT_LIBS)

# Unit suites, one per client module. -no-install: the binaries run from the build tree
# without libtool's wrapper script (they link the uninstalled libsctpm.so), so valgrind and
# the sanitizers see the test itself.
client_unit_tests = \
	tests/unit/check_client_backoff \
	tests/unit/check_client_hubapi \
	tests/unit/check_client_msg \
	tests/unit/check_client_queue \
	tests/unit/check_client_token
check_PROGRAMS += $(client_unit_tests)
TESTS += $(client_unit_tests)
unit_tests += $(client_unit_tests)
CLIENT_UNIT_CPPFLAGS = $(CLIENT_CPPFLAGS) $(CHECK_CFLAGS) -I$(top_srcdir)/client
CLIENT_UNIT_LIBS = client/libclient.la $(CLIENT_LIBS) $(CHECK_LIBS)
tests_unit_check_client_backoff_CPPFLAGS = $(CLIENT_UNIT_CPPFLAGS)
tests_unit_check_client_backoff_LDADD = $(CLIENT_UNIT_LIBS)
tests_unit_check_client_backoff_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_unit_check_client_hubapi_CPPFLAGS = $(CLIENT_UNIT_CPPFLAGS)
tests_unit_check_client_hubapi_LDADD = $(CLIENT_UNIT_LIBS)
tests_unit_check_client_hubapi_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_unit_check_client_msg_CPPFLAGS = $(CLIENT_UNIT_CPPFLAGS)
tests_unit_check_client_msg_LDADD = $(CLIENT_UNIT_LIBS)
tests_unit_check_client_msg_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_unit_check_client_queue_CPPFLAGS = $(CLIENT_UNIT_CPPFLAGS)
tests_unit_check_client_queue_LDADD = $(CLIENT_UNIT_LIBS)
tests_unit_check_client_queue_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_unit_check_client_token_CPPFLAGS = $(CLIENT_UNIT_CPPFLAGS)
tests_unit_check_client_token_LDADD = $(CLIENT_UNIT_LIBS)
tests_unit_check_client_token_LDFLAGS = $(AM_LDFLAGS) -no-install

# The client's unit suites alone.
check-client-unit:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(client_unit_tests)'
.PHONY: check-client-unit

# Integration tests: sctpm-client against sctpm-hub over TLS, with sctpmd and swtpm.
client_integration_tests = \
	tests/integration/client-input.sh \
	tests/integration/client-kill.sh \
	tests/integration/client-outage.sh \
	tests/integration/client-queue.sh \
	tests/integration/client-renew.sh \
	tests/integration/client-retry.sh \
	tests/integration/client-run.sh \
	tests/integration/client-send.sh \
	tests/integration/client-tls.sh
TESTS += $(client_integration_tests)
EXTRA_DIST += $(client_integration_tests) tests/integration/client-lib.sh \
	tests/integration/client-fakehub.py

# Every client test.
check-client:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(client_unit_tests) $(client_integration_tests)'
.PHONY: check-client
