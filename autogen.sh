#!/bin/sh
# Bootstraps the build system from a git checkout. Release tarballs ship a ready configure.
set -e
cd "$(dirname "$0")"
autoreconf --install --force --warnings=all
