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
