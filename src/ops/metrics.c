#include "ops/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A typical scrape fits at once; doubling from here lands on the bound. */
#define PROM_FIRST_CAP ((size_t)4096)

/* 2^53: every integer up to here is exact in a double. */
#define PROM_EXACT_INT 9007199254740992.0

void kite__prom_init(kite__prom *p) { memset(p, 0, sizeof(*p)); }

void kite__prom_free(kite__prom *p) {
  free(p->buf);
  kite__prom_init(p);
}

void kite__prom_reset(kite__prom *p) {
  p->len = 0;
  if (p->buf)
    p->buf[0] = 0;
  p->oom = false;
  p->invalid = false;
}

/* Room for |n| more bytes and the NUL, or oom. Once oom, always refuses:
 * the text stays a prefix of what the caller meant, never a text with a
 * hole in the middle that would still parse. */
static bool reserve(kite__prom *p, size_t n) {
  if (p->oom)
    return false;
  if (n >= KITE__PROM_MAX - p->len) { /* len + n + 1 > MAX */
    p->oom = true;
    return false;
  }
  size_t need = p->len + n + 1;
  if (need <= p->cap)
    return true;
  size_t cap = p->cap ? p->cap : PROM_FIRST_CAP;
  while (cap < need)
    cap *= 2;
  if (cap > KITE__PROM_MAX)
    cap = KITE__PROM_MAX;
  char *b = realloc(p->buf, cap);
  if (!b) {
    p->oom = true;
    return false;
  }
  p->buf = b;
  p->cap = cap;
  return true;
}

static void put(kite__prom *p, const char *s, size_t n) {
  if (!reserve(p, n))
    return;
  memcpy(p->buf + p->len, s, n);
  p->len += n;
  p->buf[p->len] = 0;
}

static void puts_(kite__prom *p, const char *s) { put(p, s, strlen(s)); }

/* Backslash and newline always; the double quote too in a label value (the
 * format escapes it there and not in HELP). Runs between escapes go in one
 * copy. */
static void put_escaped(kite__prom *p, const char *s, bool quote) {
  const char *run = s;
  for (; *s; s++) {
    const char *esc = *s == '\\'            ? "\\\\"
                      : *s == '\n'          ? "\\n"
                      : quote && *s == '"'  ? "\\\""
                                            : NULL;
    if (!esc)
      continue;
    put(p, run, (size_t)(s - run));
    put(p, esc, 2);
    run = s + 1;
  }
  put(p, run, (size_t)(s - run));
}

/* A call writes one or two whole lines or nothing: on oom, the part it did
 * write is taken back. */
static void rollback_if_oom(kite__prom *p, size_t mark) {
  if (p->oom && p->buf) {
    p->len = mark;
    p->buf[mark] = 0;
  }
}

static bool is_alpha_(char c) {
  /* Not isalpha(): the locale must not widen what the format accepts. */
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool kite__prom_name_ok(const char *name) {
  if (!name || !(is_alpha_(name[0]) || name[0] == ':'))
    return false;
  for (const char *c = name + 1; *c; c++)
    if (!is_alpha_(*c) && !is_digit(*c) && *c != ':')
      return false;
  return true;
}

static bool label_name_ok(const char *name) {
  if (!name || !is_alpha_(name[0]) || (name[0] == '_' && name[1] == '_'))
    return false;
  for (const char *c = name + 1; *c; c++)
    if (!is_alpha_(*c) && !is_digit(*c))
      return false;
  return true;
}

/* The value as Prometheus reads it (Go's ParseFloat). Integers, the usual
 * case for counters, print in full: "%g" would turn 1234567 into
 * "1.23457e+06" and lose digits. Other values take the fewest significant
 * digits that read back to the same double. */
static void format_value(char *out, size_t cap, double v) {
  if (isnan(v)) {
    snprintf(out, cap, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  /* The range test comes first: casting a double outside int64_t's range
   * is undefined. */
  if (v >= -PROM_EXACT_INT && v <= PROM_EXACT_INT && (double)(int64_t)v == v) {
    snprintf(out, cap, "%" PRId64, (int64_t)v); /* -0.0 prints "0" */
    return;
  }
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(out, cap, "%.*g", digits, v);
    if (strtod(out, NULL) == v)
      break;
  }
  /* printf follows LC_NUMERIC; an application that set a locale with a
   * decimal comma must still produce what the format reads. */
  for (char *c = out; *c; c++)
    if (*c == ',')
      *c = '.';
}

void kite__prom_family(kite__prom *p, const char *name, const char *type,
                       const char *help) {
  if (!kite__prom_name_ok(name) || !type ||
      (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0)) {
    p->invalid = true;
    return;
  }
  size_t mark = p->len;
  if (help) {
    puts_(p, "# HELP ");
    puts_(p, name);
    put(p, " ", 1);
    put_escaped(p, help, false);
    put(p, "\n", 1);
  }
  puts_(p, "# TYPE ");
  puts_(p, name);
  put(p, " ", 1);
  puts_(p, type);
  put(p, "\n", 1);
  rollback_if_oom(p, mark);
}

void kite__prom_sample(kite__prom *p, const char *name, const char *label_name,
                       const char *label_value, double value) {
  if (!kite__prom_name_ok(name) ||
      (label_name && (!label_name_ok(label_name) || !label_value))) {
    p->invalid = true;
    return;
  }
  size_t mark = p->len;
  puts_(p, name);
  if (label_name) {
    put(p, "{", 1);
    puts_(p, label_name);
    put(p, "=\"", 2);
    put_escaped(p, label_value, true);
    put(p, "\"}", 2);
  }
  char num[40]; /* "%.17g" of a double needs at most 24 */
  format_value(num, sizeof(num), value);
  put(p, " ", 1);
  puts_(p, num);
  put(p, "\n", 1);
  rollback_if_oom(p, mark);
}
