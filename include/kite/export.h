/*
 * KITE_API marks each function of kite's public API. The library is built
 * with -fvisibility=hidden, so libkite.so exports exactly the functions
 * declared with KITE_API and nothing else: internal kite__* functions, and
 * any function a header does not mark, stay out of the ABI (a ctest check,
 * tests/install/check_symbols.sh, holds this). Harmless when linking the
 * static library.
 */
#ifndef KITE_EXPORT_H
#define KITE_EXPORT_H

#if defined(__GNUC__) && __GNUC__ >= 4
#define KITE_API __attribute__((visibility("default")))
#else
#define KITE_API
#endif

#endif /* KITE_EXPORT_H */
