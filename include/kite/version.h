/*
 * kite's version: the one place it is written. CMake reads the three
 * numbers below for the project version, the shared library's SONAME and
 * the pkg-config and CMake package files (docs/INSTALL.md says when the
 * SONAME changes).
 */
#ifndef KITE_VERSION_H
#define KITE_VERSION_H

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KITE_VERSION_MAJOR 0
#define KITE_VERSION_MINOR 1
#define KITE_VERSION_PATCH 0

#define KITE__STR2(x) #x
#define KITE__STR(x) KITE__STR2(x)
/* 0xMMmmpp: compares in order, e.g. #if KITE_VERSION_HEX >= 0x000200 */
#define KITE_VERSION_HEX                                                     \
  ((KITE_VERSION_MAJOR << 16) | (KITE_VERSION_MINOR << 8) | KITE_VERSION_PATCH)
#define KITE_VERSION_STRING                                                  \
  KITE__STR(KITE_VERSION_MAJOR) "." KITE__STR(KITE_VERSION_MINOR) "."        \
  KITE__STR(KITE_VERSION_PATCH)

/* The version of the library linked at run time, as KITE_VERSION_HEX, and
 * as "MAJOR.MINOR.PATCH" (a static string). A program built against one
 * version's headers and loading another libkite.so can compare them with
 * the macros above. Any thread, any time. */
KITE_API
unsigned kite_version(void);
KITE_API
const char *kite_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* KITE_VERSION_H */
