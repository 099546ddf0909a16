# emulator/: sctpmd, the libtpms TPM 2.0 service. Not built yet (issue: sctpmd).
