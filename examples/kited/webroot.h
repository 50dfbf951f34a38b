/* kited's default static files: the arena page (docs/DEMO.md). */
#ifndef KITED_WEBROOT_H
#define KITED_WEBROOT_H

#include <stddef.h>

/* ${datadir}/kite/web relative to ${bindir} (CMake sets it). */
#ifndef KITED_WEB_REL
#define KITED_WEB_REL "../share/kite/web"
#endif

/* The directory holding the arena page installed with this kited, found
 * from its own executable's path: "web" beside it (the build tree), then
 * KITED_WEB_REL from it (an install: ${datadir}/kite/web). Writes it to
 * |buf| and returns |buf|, or NULL when neither has an index.html. */
const char *kited_web_root(char *buf, size_t cap);

#endif
