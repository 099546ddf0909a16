# docs/: man pages and design notes.
EXTRA_DIST += docs/testing.md
