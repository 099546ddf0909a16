# shim/: libsctpm, the sctpm CLI and the sctpm TCTI module. Not built yet (issue: the shim).
