# common/: helpers every part links (logging, return codes, I/O, base64, URL encoding,
# SAS token building, TPM key templates).
noinst_LTLIBRARIES += common/libcommon.la
common_libcommon_la_SOURCES = \
	common/base64.c common/base64.h \
	common/errbuf.c common/errbuf.h \
	common/io.c common/io.h \
	common/log.c common/log.h \
	common/rc.c \
	common/sas.c common/sas.h \
	common/tpmtmpl.c common/tpmtmpl.h \
	common/urlenc.c common/urlenc.h \
	common/utf8.c common/utf8.h
# Only the TSS type headers: tpmtmpl.c fills structures and calls nothing.
common_libcommon_la_CPPFLAGS = $(AM_CPPFLAGS) $(TSS2_ESYS_CFLAGS)
common_libcommon_la_LIBADD = -lpthread
sctpminclude_HEADERS += include/sctpm/rc.h
