/*
 * The server's metrics in the Prometheus text format: every counter of
 * kite_server_stats, the per-worker depths, and the endpoint's own
 * counters. Counters that differ only by a reason (closes, refused
 * handshakes, drops) are one family with a label, so a dashboard sums or
 * splits them without a list of names.
 *
 * Runs on the metrics thread: it reads atomics only.
 */
#include "server/metrics_export.h"

#include "logic/logic.h"
#include "ops/metrics_http.h"
#include "server/server_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const stat_names[] = {
#define STAT_NAME(name, help) #name,
    KITE_SERVER_STATS(STAT_NAME)
#undef STAT_NAME
};
static const char *const stat_helps[] = {
#define STAT_HELP(name, help) help,
    KITE_SERVER_STATS(STAT_HELP)
#undef STAT_HELP
};
enum { NSTATS = sizeof(stat_names) / sizeof(stat_names[0]) };

/* Stats named prefix + label value become one labelled family. */
static const struct labelled {
  const char *prefix, *family, *label, *help;
} labelled[] = {
    {"closed_", "kite_sessions_closed_total", "reason", "sessions closed, by reason"},
    {"reject_", "kite_handshakes_rejected_total", "reason", "handshakes refused, by reason"},
    {"drop_", "kite_dropped_total", "what", "input refused and counted, by kind"},
};
enum { NLABELLED = sizeof(labelled) / sizeof(labelled[0]) };

static int group_of(const char *stat) {
  for (int g = 0; g < NLABELLED; g++)
    if (!strncmp(stat, labelled[g].prefix, strlen(labelled[g].prefix)))
      return g;
  return -1;
}

static void write_stats(kite__prom *p, const kite_server_stats *st) {
  const uint64_t *v = (const uint64_t *)st;
  char family[96];
  for (int k = 0; k < NSTATS; k++) {
    if (group_of(stat_names[k]) >= 0)
      continue;
    bool gauge = !strcmp(stat_names[k], "sessions") ||
                 !strcmp(stat_names[k], "temp_workers") ||
                 !strcmp(stat_names[k], "pool_bytes");
    snprintf(family, sizeof(family), "kite_%s%s", stat_names[k],
             gauge ? "" : "_total");
    kite__prom_family(p, family, gauge ? "gauge" : "counter", stat_helps[k]);
    kite__prom_sample(p, family, NULL, NULL, (double)v[k]);
  }
  for (int g = 0; g < NLABELLED; g++) {
    kite__prom_family(p, labelled[g].family, "counter", labelled[g].help);
    size_t plen = strlen(labelled[g].prefix);
    for (int k = 0; k < NSTATS; k++)
      if (group_of(stat_names[k]) == g)
        kite__prom_sample(p, labelled[g].family, labelled[g].label,
                          stat_names[k] + plen, (double)v[k]);
  }
}

static void write_endpoint(kite__prom *p, const kite__metrics_http *m) {
  kite__metrics_http_stats st;
  kite__metrics_http_stats_get(m, &st);
  const uint64_t *v = (const uint64_t *)&st;
  static const char *const names[] = {
#define EP_NAME(name, help) "kite_metrics_" #name "_total",
      KITE__METRICS_HTTP_STATS(EP_NAME)
#undef EP_NAME
  };
  static const char *const helps[] = {
#define EP_HELP(name, help) help,
      KITE__METRICS_HTTP_STATS(EP_HELP)
#undef EP_HELP
  };
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
    kite__prom_family(p, names[k], "counter", helps[k]);
    kite__prom_sample(p, names[k], NULL, NULL, (double)v[k]);
  }
}

static void write_all(void *user, kite__prom *p) {
  kite_server *srv = user;
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  write_stats(p, &st);
  kite__logic_metrics(srv->logic, p);
  kite__prom_family(p, "kite_shards", "gauge", "shard threads");
  kite__prom_sample(p, "kite_shards", NULL, NULL, srv->nshards);
  kite__prom_family(p, "kite_worker_mode", "gauge",
                    "1 for the worker mode in use");
  kite__prom_sample(p, "kite_worker_mode", "mode",
                    kite_worker_mode_name(kite__logic_mode(srv->logic)), 1);
  write_endpoint(p, srv->metrics);
}

int kite__metrics_export_start(kite_server *srv) {
  if (!srv->cfg.metrics_addr)
    return 0;
  return kite__metrics_http_start(&srv->metrics, srv->cfg.metrics_addr,
                                  write_all, srv, &srv->log, NULL);
}

void kite__metrics_export_stop(kite_server *srv) {
  kite__metrics_http_stop(srv->metrics);
  srv->metrics = NULL;
}
