# docs/: man pages, design notes and systemd units.
dist_man_MANS += docs/sctpmd.8 docs/sctpm.1 docs/sctpm-client.1
EXTRA_DIST += docs/testing.md docs/sctpmd.md docs/shim.md docs/tcti-sctpm.md docs/client.md \
	docs/systemd/sctpmd.service.in

systemdsystemunit_DATA = docs/systemd/sctpmd.service
CLEANFILES += docs/systemd/sctpmd.service
docs/systemd/sctpmd.service: docs/systemd/sctpmd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) docs/systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/docs/systemd/sctpmd.service.in >$@
