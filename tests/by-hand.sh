# Sourced first by the test scripts that people also run by hand from a build tree (the crash
# loops, the soak): outside make (no SCTPM_TEST_DIR), it runs the calling script again through
# tests/run-test, which gives it a fresh directory and reaps everything it starts, with
# top_srcdir and top_builddir found from where the script lives and where it is run from.
if [ -z "${SCTPM_TEST_DIR:-}" ]; then
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    : "${top_srcdir:=$here}"
    if [ -z "${top_builddir:-}" ]; then
        top_builddir=$here
        [ -x "$PWD/emulator/sctpmd" ] && top_builddir=$PWD
    fi
    export top_srcdir top_builddir
    exec "$top_srcdir/tests/run-test" "$0" "$@"
fi
