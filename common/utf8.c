/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include "utf8.h"

int utf8_printable(const uint8_t *data, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = data[i];
        size_t extra;
        uint32_t cp;

        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return 0;
            }
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= extra) {
            return 0;
        }
        for (size_t k = 1; k <= extra; k++) {
            if ((data[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (data[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8. */
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        /* C1 control characters would upset a terminal as much as C0 ones. */
        if (cp >= 0x80 && cp < 0xa0) {
            return 0;
        }
        i += extra + 1;
    }
    return 1;
}
