/*
 * kite error codes.
 *
 * Every kite call that can fail returns 0 (or a count) on success and one of
 * the negative KITE_E* codes below on failure. A call that takes a callback
 * and fails never runs that callback. Codes are stable across versions.
 */
#ifndef KITE_ERROR_H
#define KITE_ERROR_H

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define KITE_ERRNO_MAP(X)                                                    \
  X(EINVAL,   -1,  "invalid argument")                                       \
  X(ENOMEM,   -2,  "out of memory or over a memory budget")                  \
  X(EFULL,    -3,  "queue or table full; retry later or shed load")          \
  X(EAGAIN,   -4,  "nothing available now")                                  \
  X(EMSGSIZE, -5,  "message too large, or buffer too small")                 \
  X(EPROTO,   -6,  "protocol violation by the peer")                         \
  X(ECLOSED,  -7,  "session or object already closed")                       \
  X(ENOTFOUND,-8,  "no such session or object")                              \
  X(ESYS,     -9,  "a system call failed (see the log for errno)")           \
  X(ESTATE,   -10, "not allowed in the current state")                       \
  X(EDEAD,    -11, "dead link: the peer made no progress for too long")

typedef enum kite_err {
  KITE_OK = 0,
#define KITE__ERR_ENUM(name, value, msg) KITE_##name = (value),
  KITE_ERRNO_MAP(KITE__ERR_ENUM)
#undef KITE__ERR_ENUM
} kite_err;

/* A static, human-readable description of |err| (never NULL; unknown codes
 * get "unknown error"). Thread-safe. */
KITE_API
const char *kite_strerror(int err);

/* The code's name without the prefix, e.g. "EFULL" (never NULL). */
KITE_API
const char *kite_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* KITE_ERROR_H */
