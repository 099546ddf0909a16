# sctpm's own autoconf macros.

# SCTPM_REQUIRE_PKG(VARIABLE-PREFIX, MODULES, DEBIAN-PACKAGE)
# Like PKG_CHECK_MODULES, but a missing module stops configure with the Debian package to install.
AC_DEFUN([SCTPM_REQUIRE_PKG], [
    PKG_CHECK_MODULES([$1], [$2], [],
        [AC_MSG_ERROR([$2 not found (pkg-config: $$1_PKG_ERRORS).
Install the Debian package $3, or run scripts/install-deps as root.])])
])

# SCTPM_ADD_CFLAG_IF_SUPPORTED(FLAG): append FLAG to SCTPM_CFLAGS when the compiler accepts it
# without a warning.
AC_DEFUN([SCTPM_ADD_CFLAG_IF_SUPPORTED], [
    AS_VAR_PUSHDEF([cache], [sctpm_cv_cflag_$1])
    AC_CACHE_CHECK([whether $CC accepts $1], [cache], [
        sctpm_save_CFLAGS=$CFLAGS
        CFLAGS="$CFLAGS -Werror $1"
        AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])], [AS_VAR_SET([cache], [yes])],
            [AS_VAR_SET([cache], [no])])
        CFLAGS=$sctpm_save_CFLAGS])
    AS_VAR_IF([cache], [yes], [SCTPM_CFLAGS="$SCTPM_CFLAGS $1"])
    AS_VAR_POPDEF([cache])
])

# SCTPM_ADD_LDFLAG_IF_SUPPORTED(FLAG)
AC_DEFUN([SCTPM_ADD_LDFLAG_IF_SUPPORTED], [
    AS_VAR_PUSHDEF([cache], [sctpm_cv_ldflag_$1])
    AC_CACHE_CHECK([whether the linker accepts $1], [cache], [
        sctpm_save_LDFLAGS=$LDFLAGS
        LDFLAGS="$LDFLAGS -Werror $1"
        AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])], [AS_VAR_SET([cache], [yes])],
            [AS_VAR_SET([cache], [no])])
        LDFLAGS=$sctpm_save_LDFLAGS])
    AS_VAR_IF([cache], [yes], [SCTPM_LDFLAGS="$SCTPM_LDFLAGS $1"])
    AS_VAR_POPDEF([cache])
])

# SCTPM_COMPILER_FLAGS: warnings, hardening, -Werror and sanitizers. Everything goes into our own
# SCTPM_CFLAGS / SCTPM_LDFLAGS (used through AM_CFLAGS / AM_LDFLAGS); the user's CFLAGS are never
# touched, so `make CFLAGS=-O0` keeps working.
AC_DEFUN([SCTPM_COMPILER_FLAGS], [
    # A build from a git checkout is a developer build: warnings are errors. A build from a release
    # tarball is not, so that a newer compiler's new warning cannot break a user's build.
    AC_ARG_ENABLE([werror],
        [AS_HELP_STRING([--enable-werror], [treat warnings as errors (default: yes in a git checkout)])],
        [], [AS_IF([test -e "$srcdir/.git"], [enable_werror=yes], [enable_werror=no])])
    AC_ARG_ENABLE([sanitizers],
        [AS_HELP_STRING([--enable-sanitizers], [build with AddressSanitizer and UndefinedBehaviorSanitizer])],
        [], [enable_sanitizers=no])
    AC_ARG_ENABLE([fuzzing],
        [AS_HELP_STRING([--enable-fuzzing],
            [build the fuzz/ targets with libFuzzer (needs clang; implies --enable-sanitizers)])],
        [], [enable_fuzzing=no])
    SCTPM_FUZZING

    SCTPM_CFLAGS=""
    SCTPM_LDFLAGS=""
    for flag in -std=gnu11 -Wall -Wextra -Wformat=2 -Wformat-security -Wshadow -Wpointer-arith \
                -Wstrict-prototypes -Wmissing-prototypes -Wmissing-declarations -Wwrite-strings \
                -Wcast-qual -Wundef -Wvla -Wimplicit-fallthrough -Wno-unused-parameter \
                -Wno-missing-field-initializers -fstack-protector-strong -fno-strict-aliasing \
                -fvisibility=hidden; do
        SCTPM_ADD_CFLAG_IF_SUPPORTED([$flag])
    done
    SCTPM_ADD_LDFLAG_IF_SUPPORTED([-Wl,-z,relro])
    SCTPM_ADD_LDFLAG_IF_SUPPORTED([-Wl,-z,now])
    SCTPM_ADD_LDFLAG_IF_SUPPORTED([-Wl,--as-needed])

    # _FORTIFY_SOURCE needs optimisation; glibc warns without it, so test with the user's CFLAGS.
    AS_IF([test "x$enable_sanitizers" != xyes], [
        SCTPM_ADD_CFLAG_IF_SUPPORTED([-D_FORTIFY_SOURCE=2])
    ])

    AS_IF([test "x$enable_sanitizers" = xyes], [
        SCTPM_CFLAGS="$SCTPM_CFLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
        SCTPM_LDFLAGS="$SCTPM_LDFLAGS -fsanitize=address,undefined"
        AC_DEFINE([SCTPM_SANITIZERS], [1], [Define to 1 in ASan/UBSan builds.])
    ])
    # Everything is instrumented for coverage, so the fuzz targets see inside the libraries;
    # only the targets themselves link libFuzzer's main (FUZZ_LDFLAGS).
    AS_IF([test "x$enable_fuzzing" = xyes], [
        SCTPM_CFLAGS="$SCTPM_CFLAGS -fsanitize=fuzzer-no-link"
        FUZZ_LDFLAGS="-fsanitize=fuzzer"
    ])
    AS_IF([test "x$enable_werror" = xyes], [SCTPM_CFLAGS="$SCTPM_CFLAGS -Werror"])
    AC_SUBST([SCTPM_CFLAGS])
    AC_SUBST([SCTPM_LDFLAGS])
    AM_CONDITIONAL([SANITIZERS], [test "x$enable_sanitizers" = xyes])
    AC_SUBST([FUZZ_LDFLAGS])
    AM_CONDITIONAL([FUZZING], [test "x$enable_fuzzing" = xyes])
])

# SCTPM_FUZZING: with --enable-fuzzing, checks that the compiler is clang and that it can link a
# libFuzzer target, and turns the sanitizers on (a fuzzer without them finds only crashes).
# Without it, the fuzz targets are built as plain programs that replay their corpora.
AC_DEFUN([SCTPM_FUZZING], [
    AS_IF([test "x$enable_fuzzing" = xyes], [
        AC_MSG_CHECKING([whether $CC is clang])
        AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[
#ifndef __clang__
#error not clang
#endif
]], [])], [AC_MSG_RESULT([yes])], [
            AC_MSG_RESULT([no])
            AC_MSG_ERROR([--enable-fuzzing needs clang (libFuzzer); CC is $CC.
Configure with: ./configure --enable-fuzzing CC=clang])])
        AC_CACHE_CHECK([whether $CC links libFuzzer targets], [sctpm_cv_libfuzzer], [
            sctpm_save_CFLAGS=$CFLAGS
            CFLAGS="$CFLAGS -fsanitize=fuzzer,address,undefined"
            AC_LINK_IFELSE([AC_LANG_SOURCE([[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { (void)data; (void)size; return 0; }
]])], [sctpm_cv_libfuzzer=yes], [sctpm_cv_libfuzzer=no])
            CFLAGS=$sctpm_save_CFLAGS])
        AS_IF([test "x$sctpm_cv_libfuzzer" != xyes], [
            AC_MSG_ERROR([$CC cannot link a libFuzzer target (-fsanitize=fuzzer).
Install the Debian package libclang-rt-dev, or run scripts/install-deps as root.])])
        enable_sanitizers=yes
    ])
])
