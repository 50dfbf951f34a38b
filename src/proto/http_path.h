/*
 * The static route's path normaliser (issue 17: the demo page is served
 * from a directory on kite's TCP port). It turns a request-target into a
 * path relative to that directory, or refuses it, before anything touches
 * the file system:
 *
 *   char rel[256];
 *   int why = kite__http_path_normalize(r.target, rel, sizeof(rel));
 *   if (why) answer kite__http_path_status(why);
 *   else openat(root_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) ...
 *
 * Rules, applied to the path after percent-decoding (so "%2e%2e" and
 * "%2f" are judged as ".." and "/"):
 *   - the target must be origin-form ("/..."); the query ("?...") and a
 *     fragment ("#...") are dropped, before decoding;
 *   - every "%" must be followed by two hex digits;
 *   - refused anywhere in the decoded path: NUL, any other control byte,
 *     a backslash, an empty segment ("//": also what an encoded absolute
 *     path becomes), and any segment that starts with "." (".", "..", and
 *     hidden files such as ".git");
 *   - a path ending in "/" (the root included) gets "index.html".
 * The result never starts with "/" and has no "." or ".." segment, so it
 * stays under the directory as long as the directory holds no symlink
 * out of it: the server opens it with O_NOFOLLOW (and should refuse
 * symlinks in between, e.g. with openat2's RESOLVE_BENEATH).
 *
 * Pure: no allocation, no file system, any thread.
 */
#ifndef KITE_PROTO_HTTP_PATH_H
#define KITE_PROTO_HTTP_PATH_H

#include <stddef.h>

/* Why a target was refused. Positive; 0 is success. */
enum kite__http_path_err {
  KITE__PATH_OK = 0,
  KITE__PATH_ENOT_ORIGIN,  /* 400: does not start with "/" */
  KITE__PATH_EBAD_ESCAPE,  /* 400: "%" without two hex digits */
  KITE__PATH_ECONTROL,     /* 403: NUL or another control byte */
  KITE__PATH_EBACKSLASH,   /* 403: "\" (a Windows separator) */
  KITE__PATH_EEMPTY_SEG,   /* 403: "//", e.g. an encoded absolute path */
  KITE__PATH_EDOT_SEG,     /* 403: a segment starting with "." (".." too) */
  KITE__PATH_ETOO_LONG,    /* 414: the result does not fit |cap| */
};

/* Normalises |target| (NUL-terminated) into |out| (|cap| bytes, NUL
 * included). Returns 0, or a kite__http_path_err; then |out| holds
 * nothing useful. */
int kite__http_path_normalize(const char *target, char *out, size_t cap);

/* The status to answer for a kite__http_path_err: 400, 403 or 414. */
int kite__http_path_status(int err);

/* A static description (never NULL). */
const char *kite__http_path_strerror(int err);

#endif
