#include "proto/http_path.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static int hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int kite__http_path_normalize(const char *target, char *out, size_t cap) {
  static const char index_html[] = "index.html";
  if (cap == 0)
    return KITE__PATH_ETOO_LONG;
  out[0] = 0;
  if (target[0] != '/')
    return KITE__PATH_ENOT_ORIGIN;
  size_t n = 0;
  bool seg_start = true; /* the next byte starts a segment */
  /* The leading "/" is the route's root, not part of the result. */
  for (const char *p = target + 1; *p && *p != '?' && *p != '#'; p++) {
    uint8_t c = (uint8_t)*p;
    if (c == '%') {
      int hi = hex(p[1]), lo = hi < 0 ? -1 : hex(p[2]);
      if (hi < 0 || lo < 0)
        return KITE__PATH_EBAD_ESCAPE;
      c = (uint8_t)(hi << 4 | lo);
      p += 2;
    }
    /* Judged after decoding: an escape hides nothing. */
    if (c < 0x20 || c == 0x7f)
      return KITE__PATH_ECONTROL;
    if (c == '\\')
      return KITE__PATH_EBACKSLASH;
    if (c == '/') {
      if (seg_start)
        return KITE__PATH_EEMPTY_SEG;
      seg_start = true;
    } else {
      if (seg_start && c == '.')
        return KITE__PATH_EDOT_SEG;
      seg_start = false;
    }
    if (n + 1 >= cap)
      return KITE__PATH_ETOO_LONG;
    out[n++] = (char)c;
  }
  if (seg_start) { /* "/" or ".../": the directory's index */
    if (n + sizeof(index_html) > cap)
      return KITE__PATH_ETOO_LONG;
    memcpy(out + n, index_html, sizeof(index_html));
    return KITE__PATH_OK;
  }
  out[n] = 0;
  return KITE__PATH_OK;
}

int kite__http_path_status(int err) {
  switch (err) {
  case KITE__PATH_ENOT_ORIGIN:
  case KITE__PATH_EBAD_ESCAPE: return 400;
  case KITE__PATH_ETOO_LONG: return 414;
  }
  return 403;
}

const char *kite__http_path_strerror(int err) {
  switch (err) {
  case KITE__PATH_OK: return "path ok";
  case KITE__PATH_ENOT_ORIGIN: return "request-target does not start with /";
  case KITE__PATH_EBAD_ESCAPE: return "% not followed by two hex digits";
  case KITE__PATH_ECONTROL: return "NUL or a control byte in the path";
  case KITE__PATH_EBACKSLASH: return "backslash in the path";
  case KITE__PATH_EEMPTY_SEG: return "empty path segment (//)";
  case KITE__PATH_EDOT_SEG: return "path segment starting with a dot";
  case KITE__PATH_ETOO_LONG: return "path too long";
  }
  return "unknown path error";
}
