/*
 * The login route's request parser (login.h): one POST /login with a
 * form body, judged whole from the bytes read so far. Pure.
 */
#include "login.h"

#include "demo_proto.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const int statuses[] = {
#define LOGIN_OUTCOME_STATUS(name, status, help) status,
    LOGIN_OUTCOMES(LOGIN_OUTCOME_STATUS)
#undef LOGIN_OUTCOME_STATUS
};
static const char *const names[] = {
#define LOGIN_OUTCOME_NAME(name, status, help) #name,
    LOGIN_OUTCOMES(LOGIN_OUTCOME_NAME)
#undef LOGIN_OUTCOME_NAME
};
static const char *const helps[] = {
#define LOGIN_OUTCOME_HELP(name, status, help) help,
    LOGIN_OUTCOMES(LOGIN_OUTCOME_HELP)
#undef LOGIN_OUTCOME_HELP
};

int login_status(int o) {
  return o >= 0 && o < LOGIN_OUTCOME_COUNT ? statuses[o] : 400;
}
const char *login_outcome_name(int o) {
  return o >= 0 && o < LOGIN_OUTCOME_COUNT ? names[o] : "?";
}
const char *login_outcome_help(int o) {
  return o >= 0 && o < LOGIN_OUTCOME_COUNT ? helps[o] : "?";
}

static const char *find(const char *s, size_t len, const char *what) {
  size_t n = strlen(what);
  for (size_t i = 0; i + n <= len; i++)
    if (!memcmp(s + i, what, n))
      return s + i;
  return NULL;
}

/* tchar of RFC 9110 section 5.6.2. */
static bool is_tchar(int c) {
  return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The form's name field, decoded (+ and %XX) into |name|. */
static int form_name(const char *b, size_t len, char *name) {
  size_t i = 0;
  bool found = false;
  while (i < len) {
    size_t end = i;
    while (end < len && b[end] != '&')
      end++;
    if (end - i >= 5 && !memcmp(b + i, "name=", 5)) {
      if (found)
        return LOGIN_bad_requests; /* two names */
      found = true;
      size_t n = 0;
      for (size_t j = i + 5; j < end; j++) {
        int c = (unsigned char)b[j];
        if (c == '+') {
          c = ' ';
        } else if (c == '%') {
          int hi = j + 2 < end ? hexval(b[j + 1]) : -1;
          int lo = hi >= 0 ? hexval(b[j + 2]) : -1;
          if (lo < 0)
            return LOGIN_bad_requests;
          c = hi << 4 | lo;
          j += 2;
        }
        if (n == DEMO_NAME_MAX)
          return LOGIN_bad_names;
        name[n++] = (char)c;
      }
      name[n] = 0;
      if (!demo_name_ok((const uint8_t *)name, n))
        return LOGIN_bad_names;
    }
    i = end + 1;
  }
  return found ? LOGIN_tokens : LOGIN_bad_names;
}

int login_parse(const char *buf, size_t len, char *name) {
  const char *end = find(buf, len < LOGIN_HEAD_MAX ? len : LOGIN_HEAD_MAX,
                         "\r\n\r\n");
  if (!end)
    return len >= LOGIN_HEAD_MAX ? LOGIN_too_large : LOGIN_MORE;
  size_t head = (size_t)(end - buf) + 2; /* through the last header's CRLF */

  /* The request line: METHOD SP TARGET SP HTTP/1.x CRLF */
  const char *p = buf, *line_end = find(buf, head, "\r\n");
  const char *sp1 = memchr(p, ' ', (size_t)(line_end - p));
  if (!sp1 || sp1 == p)
    return LOGIN_bad_requests;
  for (const char *m = p; m < sp1; m++)
    if (!is_tchar((unsigned char)*m))
      return LOGIN_bad_requests;
  const char *target = sp1 + 1;
  const char *sp2 = memchr(target, ' ', (size_t)(line_end - target));
  if (!sp2 || sp2 == target || line_end - sp2 != 9 ||
      memcmp(sp2 + 1, "HTTP/1.", 7) || !isdigit((unsigned char)sp2[8]))
    return LOGIN_bad_requests;
  for (const char *t = target; t < sp2; t++)
    if ((unsigned char)*t <= ' ' || *t == 0x7f)
      return LOGIN_bad_requests;
  size_t tlen = (size_t)(sp2 - target);
  if (!(tlen == 6 && !memcmp(target, "/login", 6)) &&
      !(tlen > 6 && !memcmp(target, "/login?", 7)))
    return LOGIN_not_found;
  if (sp1 - p != 4 || memcmp(p, "POST", 4))
    return LOGIN_bad_method;

  /* Headers: Content-Length and Content-Type are read; chunked refused. */
  long long length = -1;
  for (p = line_end + 2; p < buf + head; p = line_end + 2) {
    line_end = find(p, (size_t)(buf + head - p), "\r\n");
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (!colon || colon == p)
      return LOGIN_bad_requests;
    for (const char *c = p; c < colon; c++)
      if (!is_tchar((unsigned char)*c))
        return LOGIN_bad_requests;
    const char *v = colon + 1, *ve = line_end;
    while (v < ve && (*v == ' ' || *v == '\t'))
      v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
      ve--;
    for (const char *c = v; c < ve; c++)
      if ((unsigned char)*c < ' ' && *c != '\t')
        return LOGIN_bad_requests;
    size_t nlen = (size_t)(colon - p), vlen = (size_t)(ve - v);
    if (nlen == 14 && !strncasecmp(p, "Content-Length", 14)) {
      if (length >= 0 || vlen == 0 || vlen > 9)
        return vlen > 9 ? LOGIN_too_large : LOGIN_bad_requests;
      length = 0;
      for (const char *c = v; c < ve; c++) {
        if (!isdigit((unsigned char)*c))
          return LOGIN_bad_requests;
        length = length * 10 + (*c - '0');
      }
    } else if (nlen == 17 && !strncasecmp(p, "Transfer-Encoding", 17)) {
      return LOGIN_no_length;
    } else if (nlen == 12 && !strncasecmp(p, "Content-Type", 12)) {
      static const char form[] = "application/x-www-form-urlencoded";
      size_t flen = sizeof(form) - 1;
      if (vlen < flen || strncasecmp(v, form, flen) ||
          (vlen > flen && v[flen] != ';' && v[flen] != ' '))
        return LOGIN_bad_type;
    }
  }
  if (length < 0)
    return LOGIN_no_length;
  if (length > LOGIN_BODY_MAX)
    return LOGIN_too_large;
  size_t body = head + 2;
  if (len - body < (size_t)length)
    return LOGIN_MORE;
  return form_name(buf + body, (size_t)length, name);
}
