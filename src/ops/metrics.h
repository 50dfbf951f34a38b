/*
 * The Prometheus text exposition format, version 0.0.4: a growing buffer
 * that families and samples are written into, for the metrics endpoint
 * (ops/metrics_http.h) to serve.
 *
 *   kite__prom p;
 *   kite__prom_init(&p);
 *   kite__prom_family(&p, "kite_sessions", "gauge", "sessions open now");
 *   kite__prom_sample(&p, "kite_sessions", NULL, NULL, 12);
 *   kite__prom_family(&p, "kite_closed_total", "counter", "sessions closed");
 *   kite__prom_sample(&p, "kite_closed_total", "reason", "idle", 3);
 *   ... p.buf, p.len ...        // "# HELP kite_sessions sessions open now\n..."
 *   kite__prom_reset(&p);       // the next scrape reuses the buffer
 *   kite__prom_free(&p);
 *
 * The text is always whole lines: a line that does not fit is dropped as a
 * whole, never cut, so what is there parses. Not thread-safe: one writer.
 */
#ifndef KITE_OPS_METRICS_H
#define KITE_OPS_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* The most the buffer ever allocates, its terminating NUL included: a scrape
 * is a few kilobytes, so reaching this means a runaway label set, and
 * bounding it keeps that bug from eating the process's memory. */
#define KITE__PROM_MAX ((size_t)1 << 20)

typedef struct kite__prom {
  char *buf;   /* NUL-terminated text (NULL until the first write) */
  size_t len;  /* bytes of text, always < KITE__PROM_MAX */
  size_t cap;  /* bytes allocated */
  bool oom;    /* a line did not fit (the bound, or malloc failed): it and
                  every later write were dropped */
  bool invalid; /* a call broke a contract below (a bad name or type): that
                   call wrote nothing */
} kite__prom;

void kite__prom_init(kite__prom *p);

/* Frees the text. |p| may be initialised again. */
void kite__prom_free(kite__prom *p);

/* Empties the text and clears oom and invalid, keeping the allocation, so
 * a scrape after the first allocates nothing. */
void kite__prom_reset(kite__prom *p);

/* true when |name| is a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool kite__prom_name_ok(const char *name);

/* Starts family |name|: "# HELP name help" (skipped when |help| is NULL;
 * backslash and newline escaped) and "# TYPE name type". |type| is
 * "counter" or "gauge". The format wants each family once, with all its
 * samples right after its header: the caller keeps to that. A bad name or
 * type writes nothing and sets |invalid|. */
void kite__prom_family(kite__prom *p, const char *name, const char *type,
                       const char *help);

/* One sample of the family just started: "name value" or
 * "name{label_name=\"label_value\"} value". |name| is the family's name.
 * |label_name| (or NULL for none) matches [a-zA-Z_][a-zA-Z0-9_]* and does
 * not start with "__" (reserved); |label_value| is any UTF-8 text (not
 * NULL when |label_name| is not), escaped here: backslash, double quote
 * and newline. |value|: an integer of magnitude up to 2^53 prints in full
 * with no exponent ("9007199254740992"); other values print in the
 * shortest form that reads back exactly ("0.1", "1e+20"), and NaN, +Inf,
 * -Inf as the format spells them. A uint64_t counter above 2^53 loses its
 * low bits in the double. A bad name writes nothing and sets |invalid|. */
void kite__prom_sample(kite__prom *p, const char *name, const char *label_name,
                       const char *label_value, double value);

#endif
