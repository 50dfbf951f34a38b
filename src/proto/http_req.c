/*
 * The request-head parser (http_req.h): one byte at a time through a small
 * state machine, so that a head may arrive in any pieces and no copy of it
 * is kept. RFC 9112 sections 2 to 5, kept strict where leniency would only
 * help a confused or hostile peer: no obs-fold, no whitespace before a
 * header's colon, no bare CR, no control bytes in values. A bare LF ends a
 * line as CRLF does (RFC 9112 section 2.2 allows it; some tools send it).
 */
#include "proto/http_req.h"

#include <string.h>

#include <nettle/base64.h>

#include "kite/error.h"

enum state {
  S_METHOD,     /* request line: the method (leading blank lines skipped) */
  S_TARGET,     /* the request-target */
  S_VERSION,    /* "HTTP/1.x" */
  S_LINE_LF,    /* a CR was seen: LF must follow */
  S_HDR_START,  /* a header line starts, or the blank line that ends all */
  S_NAME,       /* a header name, up to its colon */
  S_VALUE_LWS,  /* blanks after the colon */
  S_VALUE,      /* the value, up to CR or LF */
  S_END_LF,     /* the blank line's CR was seen: LF must follow */
  S_DONE,
  S_FAILED,
};

/* The headers kept, by id; 0 is any other. */
enum {
  H_NONE = 0,
  H_HOST,
  H_UPGRADE,
  H_CONNECTION,
  H_KEY,
  H_VERSION,
  H_ORIGIN,
};

static const struct {
  const char *name; /* lower case */
  uint8_t id;
} kept[] = {
    {"host", H_HOST},
    {"upgrade", H_UPGRADE},
    {"connection", H_CONNECTION},
    {"sec-websocket-key", H_KEY},
    {"sec-websocket-version", H_VERSION},
    {"origin", H_ORIGIN},
};

void kite__http_limits_init(kite__http_limits *l) {
  l->head_max = KITE__HTTP_HEAD_MAX_DEFAULT;
  l->line_max = KITE__HTTP_LINE_MAX_DEFAULT;
  l->headers_max = KITE__HTTP_HEADERS_MAX_DEFAULT;
}

int kite__http_why_status(int why) {
  switch (why) {
#define KITE__HTTP_WHY_STATUS(name, status, text)                             \
  case KITE__HTTP_E##name: return status;
    KITE__HTTP_WHYS(KITE__HTTP_WHY_STATUS)
#undef KITE__HTTP_WHY_STATUS
  }
  return 400;
}

const char *kite__http_why_str(int why) {
  switch (why) {
  case KITE__HTTP_OK: return "request head ok";
#define KITE__HTTP_WHY_TEXT(name, status, text)                               \
  case KITE__HTTP_E##name: return text;
    KITE__HTTP_WHYS(KITE__HTTP_WHY_TEXT)
#undef KITE__HTTP_WHY_TEXT
  }
  return "unknown request head error";
}

void kite__http_req_init(kite__http_req *r, const kite__http_limits *lim) {
  memset(r, 0, sizeof(*r));
  if (lim)
    r->lim = *lim;
  else
    kite__http_limits_init(&r->lim);
  r->state = S_METHOD;
}

/* RFC 9110 section 5.6.2: tchar. */
static bool is_tchar(uint8_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static uint8_t lower(uint8_t c) {
  return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool ieq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen)
    return false;
  for (size_t i = 0; i < alen; i++)
    if (lower((uint8_t)a[i]) != (uint8_t)b[i])
      return false;
  return true;
}

/* true when the comma-separated list |v| holds |token| (case-insensitive,
 * blanks around elements ignored; RFC 9110 section 5.6.1). */
static bool list_has(const char *v, const char *token) {
  const char *p = v;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',')
      p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if (end > start && ieq(start, (size_t)(end - start), token))
      return true;
  }
  return false;
}

static int fail(kite__http_req *r, int why) {
  r->why = (uint8_t)why;
  r->state = S_FAILED;
  return KITE_EPROTO;
}

/* Stores a kept header's whole value; 0 or a kite__http_why. */
static int end_header(kite__http_req *r) {
  /* Trailing blanks are not part of the value (RFC 9112 section 5.1). */
  while (r->value_len && (r->value[r->value_len - 1] == ' ' ||
                          r->value[r->value_len - 1] == '\t'))
    r->value_len--;
  r->value[r->value_len] = 0;
  switch (r->hdr_id) {
  case H_HOST:
    if (r->has_host)
      return KITE__HTTP_EDUPLICATE; /* RFC 9112 section 3.2: 400 */
    r->has_host = true;
    memcpy(r->host, r->value, r->value_len + 1u);
    break;
  case H_ORIGIN:
    if (r->has_origin)
      return KITE__HTTP_EDUPLICATE;
    r->has_origin = true;
    memcpy(r->origin, r->value, r->value_len + 1u);
    break;
  case H_UPGRADE: /* lists: several lines add up */
    if (list_has(r->value, "websocket"))
      r->upgrade_websocket = true;
    break;
  case H_CONNECTION:
    if (list_has(r->value, "upgrade"))
      r->connection_upgrade = true;
    break;
  case H_KEY:
    if (r->has_key)
      return KITE__HTTP_EDUPLICATE;
    r->has_key = true;
    /* A key that does not fit is not a key: kept empty, judged invalid. */
    if (r->value_len <= KITE__HTTP_KEY_CAP)
      memcpy(r->key, r->value, r->value_len + 1u);
    break;
  case H_VERSION:
    if (r->has_version)
      return KITE__HTTP_EDUPLICATE;
    r->has_version = true;
    if (r->value_len < sizeof(r->version))
      memcpy(r->version, r->value, r->value_len + 1u);
    break;
  }
  return 0;
}

/* The header name just ended: which kept header, if any, it is. */
static void name_done(kite__http_req *r) {
  r->hdr_id = H_NONE;
  if (r->name_len > sizeof(r->name))
    return;
  for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
    if (ieq(r->name, r->name_len, kept[i].name))
      r->hdr_id = kept[i].id;
}

/* The request line's version, "HTTP/1.x", is whole. */
static bool version_ok(kite__http_req *r) {
  const char *v = r->value;
  if (r->version_len != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' ||
      v[7] > '9')
    return false;
  r->minor = (uint8_t)(v[7] - '0');
  return true;
}

/* A line ended (after its LF). */
static int line_end(kite__http_req *r) {
  r->line_len = 0;
  r->state = S_HDR_START;
  return 0;
}

#define STEP_DONE (-1)

/* One byte: 0 to go on, STEP_DONE when it ended the head, or a
 * kite__http_why. */
static int step(kite__http_req *r, uint8_t c) {
  bool eol = c == '\r' || c == '\n';
  if (!eol && ++r->line_len > r->lim.line_max)
    return KITE__HTTP_ELINE_TOO_LONG;
  switch (r->state) {
  case S_METHOD:
    if (eol && r->method_len == 0) {
      r->line_len = 0; /* RFC 9112 section 2.2: blank lines before it */
      return 0;
    }
    if (c == ' ') {
      if (r->method_len == 0)
        return KITE__HTTP_EBAD_METHOD;
      r->method_str[r->method_len] = 0;
      if (strcmp(r->method_str, "GET") == 0)
        r->method = KITE__HTTP_M_GET;
      else if (strcmp(r->method_str, "HEAD") == 0)
        r->method = KITE__HTTP_M_HEAD;
      r->state = S_TARGET;
      return 0;
    }
    if (!is_tchar(c) || r->method_len >= KITE__HTTP_METHOD_CAP)
      return KITE__HTTP_EBAD_METHOD;
    r->method_str[r->method_len++] = (char)c;
    return 0;
  case S_TARGET:
    if (c == ' ') {
      if (r->target_len == 0)
        return KITE__HTTP_EBAD_TARGET;
      r->target[r->target_len] = 0;
      r->state = S_VERSION;
      return 0;
    }
    if (c <= 0x20 || c == 0x7f)
      return eol ? KITE__HTTP_EBAD_VERSION : KITE__HTTP_EBAD_TARGET;
    if (r->target_len >= KITE__HTTP_TARGET_CAP)
      return KITE__HTTP_ETARGET_TOO_LONG;
    r->target[r->target_len++] = (char)c;
    return 0;
  case S_VERSION:
    if (eol) {
      if (!version_ok(r))
        return KITE__HTTP_EBAD_VERSION;
      r->value_len = 0;
      if (c == '\r') {
        r->state = S_LINE_LF;
        return 0;
      }
      return line_end(r);
    }
    if (r->version_len >= 8)
      return KITE__HTTP_EBAD_VERSION;
    r->value[r->version_len++] = (char)c;
    return 0;
  case S_LINE_LF:
    if (c != '\n')
      return KITE__HTTP_EBAD_LINE;
    if (r->headers) { /* a header line's CR; else the request line's */
      int e = end_header(r);
      if (e)
        return e;
    }
    return line_end(r);
  case S_HDR_START:
    if (c == '\r') {
      r->state = S_END_LF;
      return 0;
    }
    if (c == '\n')
      return STEP_DONE;
    if (c == ' ' || c == '\t')
      return KITE__HTTP_EOBS_FOLD;
    if (!is_tchar(c))
      return KITE__HTTP_EBAD_HEADER_NAME;
    if (++r->headers > r->lim.headers_max)
      return KITE__HTTP_ETOO_MANY_HEADERS;
    r->name_len = 0;
    r->hdr_id = H_NONE;
    r->state = S_NAME;
    /* FALLTHROUGH - the byte is the name's first */
  case S_NAME:
    if (c == ':') {
      name_done(r);
      r->value_len = 0;
      r->state = S_VALUE_LWS;
      return 0;
    }
    if (eol)
      return KITE__HTTP_EBAD_LINE;
    if (!is_tchar(c))
      return c == ' ' || c == '\t' ? KITE__HTTP_EBAD_LINE
                                   : KITE__HTTP_EBAD_HEADER_NAME;
    if (r->name_len < sizeof(r->name))
      r->name[r->name_len] = (char)c;
    if (r->name_len <= sizeof(r->name))
      r->name_len++; /* sizeof + 1: too long to be one we keep */
    return 0;
  case S_VALUE_LWS:
    if (c == ' ' || c == '\t')
      return 0;
    r->state = S_VALUE;
    /* FALLTHROUGH */
  case S_VALUE:
    if (eol) {
      if (c == '\r') {
        r->state = S_LINE_LF;
        return 0;
      }
      int e = end_header(r);
      return e ? e : line_end(r);
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return KITE__HTTP_EBAD_HEADER_VALUE;
    if (r->hdr_id == H_NONE)
      return 0; /* not kept: only the line limit applies */
    if (r->value_len >= KITE__HTTP_VALUE_CAP)
      return KITE__HTTP_EVALUE_TOO_LONG;
    r->value[r->value_len++] = (char)c;
    return 0;
  case S_END_LF:
    return c == '\n' ? STEP_DONE : KITE__HTTP_EBAD_LINE;
  }
  return KITE__HTTP_EBAD_LINE;
}

int kite__http_req_feed(kite__http_req *r, const uint8_t *data, size_t len,
                        size_t *used) {
  *used = 0;
  if (r->state == S_DONE)
    return 0;
  if (r->state == S_FAILED)
    return KITE_EPROTO;
  for (size_t i = 0; i < len; i++) {
    if (++r->head_len > r->lim.head_max)
      return fail(r, KITE__HTTP_EHEAD_TOO_LONG);
    int e = step(r, data[i]);
    if (e == STEP_DONE) {
      r->state = S_DONE;
      *used = i + 1;
      return 0;
    }
    if (e)
      return fail(r, e);
  }
  *used = len;
  return KITE_EAGAIN;
}

bool kite__http_ws_key_valid(const char *key) {
  /* 16 bytes are 22 characters and "==": nothing else decodes to 16. */
  if (strlen(key) != 24 || key[22] != '=' || key[23] != '=')
    return false;
  struct base64_decode_ctx ctx;
  uint8_t out[BASE64_DECODE_LENGTH(24)];
  size_t n = sizeof(out);
  base64_decode_init(&ctx);
  for (int i = 0; i < 22; i++) /* nettle skips blanks: refuse them here */
    if (!((key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= 'a' && key[i] <= 'z') ||
          (key[i] >= '0' && key[i] <= '9') || key[i] == '+' || key[i] == '/'))
      return false;
  if (!base64_decode_update(&ctx, &n, out, 24, key) ||
      !base64_decode_final(&ctx))
    return false;
  return n == 16;
}

int kite__http_req_verdict(const kite__http_req *r, int *status) {
  if (r->method != KITE__HTTP_M_GET) {
    *status = 405;
    return KITE__HTTP_REFUSE;
  }
  bool ws = r->upgrade_websocket || r->has_key;
  if (!ws) {
    if (r->minor >= 1 && !r->has_host) {
      *status = 400;
      return KITE__HTTP_REFUSE;
    }
    *status = 200;
    return KITE__HTTP_GET;
  }
  /* RFC 6455 section 4.2.1, in its order; the version last but one, so a
   * client of another version learns which one we speak (section 4.4). */
  if (r->minor < 1 || !r->has_host || !r->upgrade_websocket ||
      !r->connection_upgrade) {
    *status = 400;
    return KITE__HTTP_REFUSE;
  }
  if (!r->has_version || strcmp(r->version, "13") != 0) {
    *status = 426;
    return KITE__HTTP_REFUSE;
  }
  if (!r->has_key || !kite__http_ws_key_valid(r->key)) {
    *status = 400;
    return KITE__HTTP_REFUSE;
  }
  *status = 101;
  return KITE__HTTP_UPGRADE;
}
