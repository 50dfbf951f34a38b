/*
 * kite-bench: load, correctness and cost of a kite server (or of the plain
 * UDP floor), in one run.
 *
 *   kite-bench --udp|--tcp|--kcp|--enet HOST:PORT [--sessions N] [--rate R]
 *              [--size B] [--duration S] [--warmup S] [--drain S]
 *              [--per-socket N] [--ping-ms MS] [--server-pid PID] [--floor]
 *              [--json] [--token-key FILE --protocol-id N]
 *
 * --token-key (with --udp or --tcp) runs kite's protocol version 2: every
 * session mints its own connect token under the key in FILE (64 hex
 * characters, as kite-echo takes it) for --protocol-id, as a game's
 * backend would, and connects with it.
 *
 * --rate is frames per session per second (0: idle sessions that only
 * ping); an echo not back --drain seconds (2) after the window counts as
 * lost; --floor sends bare datagrams to bench/udp_echo_floor instead of
 * kite frames, so kite's cost can be read as a ratio of the floor measured
 * on the same machine in the same run. On a terminal a live line shows
 * the run once a second (progress.c). --tcp runs the same load over kite's
 * TCP transport. --kcp and --enet run it against servers that are not kite
 * (bench/compare): bare KCP with one socket per session, as a kcp-go
 * listener tells sessions apart by address, and ENet peers. Exit status 1
 * when any echo was lost, corrupt or out of order, or a session failed.
 */
#include "bench.h"
#include "help.h"

#include "kite/token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void usage(void) {
  fprintf(stderr,
          "usage: kite-bench --udp|--tcp|--kcp|--enet HOST:PORT [--sessions N] [--rate R]\n"
          "                  [--size B] [--duration S] [--warmup S] [--drain S] [--per-socket N]\n"
          "                  [--ping-ms MS] [--server-pid PID] [--floor] [--json] [--quiet]\n"
          "                  [--token-key FILE --protocol-id N]\n"
          "       kite-bench --ws HOST:PORT [--ws-path /kite] [the same options]\n");
  exit(2);
}

static double num(const char *opt, const char *v, double lo, double hi) {
  char *end;
  errno = 0;
  double x = v ? strtod(v, &end) : 0;
  if (!v || *end || errno || x < lo || x > hi) {
    fprintf(stderr, "kite-bench: %s takes a number in [%g, %g]\n", opt, lo, hi);
    usage();
  }
  return x;
}

const char *bench_mode_name(bench_mode m) {
  switch (m) {
  case BENCH_KITE_UDP: return "kite";
  case BENCH_KITE_TCP: return "kite-tcp";
  case BENCH_FLOOR: return "floor";
  case BENCH_KCP: return "kcp";
  case BENCH_ENET: return "enet";
  case BENCH_KITE_WS: return "kite-ws";
  }
  return "?";
}

const char *bench_run_name(const bench_config *cfg) {
  if (!cfg->v2)
    return bench_mode_name(cfg->mode);
  return cfg->mode == BENCH_KITE_TCP ? "kite-tcp-v2" : "kite-v2";
}

/* The private key in |path|: 64 hex characters. */
static void read_key(const char *path, uint8_t key[32]) {
  char text[256] = {0};
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
  if (f)
    fclose(f);
  text[n] = 0;
  int rc = kite_token_key_parse(key, text);
  memset(text, 0, sizeof(text));
  if (rc < 0) {
    fprintf(stderr, "kite-bench: --token-key %s: not 64 hex characters\n", path);
    exit(2);
  }
}

/* One socket per session (--kcp) needs a descriptor each. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void report(const bench_config *cfg, const bench_result *r) {
  double ms = 1e-3;
  double msgs_s = r->window_s > 0 ? (double)r->window_received / r->window_s : 0;
  double cpu_pct = r->window_s > 0 ? 100.0 * r->server_cpu_s / r->window_s : 0;
  double us_per_msg = r->window_received ? r->server_cpu_s * 1e6 / (double)r->window_received : 0;
  if (!cfg->quiet) {
    printf("%s %s: %u sessions (%u failed, connected in %.2f s), %.1f frames/s each, %u B\n",
           bench_run_name(cfg), cfg->server, r->connected, r->failed,
           r->connect_s, cfg->rate, cfg->size);
    printf("  echoes: %llu sent, %llu received, %llu lost, %llu out of order, %llu corrupt\n",
           (unsigned long long)r->sent, (unsigned long long)r->received,
           (unsigned long long)r->lost, (unsigned long long)r->out_of_order,
           (unsigned long long)r->corrupt);
    printf("  window %.1f s: %.0f echoes/s; rtt p50 %.3f ms, p99 %.3f ms, p999 %.3f ms, max %.3f ms\n",
           r->window_s, msgs_s, (double)hist_quantile(&r->rtt, 0.5) * ms,
           (double)hist_quantile(&r->rtt, 0.99) * ms,
           (double)hist_quantile(&r->rtt, 0.999) * ms, (double)r->rtt.max_us * ms);
    if (cfg->server_pid)
      printf("  server pid %d: %.1f%% of a core, %.2f us CPU per echo, rss %llu kB (peak %llu kB)\n",
             cfg->server_pid, cpu_pct, us_per_msg, (unsigned long long)r->server_rss_kb,
             (unsigned long long)r->server_hwm_kb);
  }
  if (cfg->json) {
    printf("{\"mode\":\"%s\",\"sessions\":%u,\"failed\":%u,\"connect_s\":%.3f,"
           "\"rate\":%.3f,\"size\":%u,\"sent\":%llu,\"received\":%llu,\"lost\":%llu,"
           "\"out_of_order\":%llu,\"corrupt\":%llu,\"msgs_per_s\":%.1f,"
           "\"rtt_p50_ms\":%.3f,\"rtt_p99_ms\":%.3f,\"rtt_p999_ms\":%.3f,\"rtt_max_ms\":%.3f",
           bench_run_name(cfg), r->connected, r->failed, r->connect_s, cfg->rate,
           cfg->size, (unsigned long long)r->sent, (unsigned long long)r->received,
           (unsigned long long)r->lost, (unsigned long long)r->out_of_order,
           (unsigned long long)r->corrupt, msgs_s, (double)hist_quantile(&r->rtt, 0.5) * ms,
           (double)hist_quantile(&r->rtt, 0.99) * ms, (double)hist_quantile(&r->rtt, 0.999) * ms,
           (double)r->rtt.max_us * ms);
    if (cfg->server_pid)
      printf(",\"server_cpu_pct\":%.2f,\"server_us_per_msg\":%.3f,\"server_rss_kb\":%llu,"
             "\"server_hwm_kb\":%llu",
             cpu_pct, us_per_msg, (unsigned long long)r->server_rss_kb,
             (unsigned long long)r->server_hwm_kb);
    printf("}\n");
  }
}

int main(int argc, char **argv) {
  bench_config cfg = {
      .sessions = 100, .per_socket = 1000, .rate = 20, .size = 64,
      .duration_s = 10, .warmup_s = 2, .drain_s = 2,
  };
  bool floor = false, have_pid = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(kite_bench_help, stdout);
      return 0;
    }
    if (!strcmp(a, "--floor")) floor = true;
    else if (!strcmp(a, "--json")) cfg.json = true;
    else if (!strcmp(a, "--quiet")) cfg.quiet = true;
    else if (!strcmp(a, "--udp") && v) { cfg.server = v; cfg.mode = BENCH_KITE_UDP; i++; }
    else if (!strcmp(a, "--tcp") && v) { cfg.server = v; cfg.mode = BENCH_KITE_TCP; i++; }
    else if (!strcmp(a, "--kcp") && v) { cfg.server = v; cfg.mode = BENCH_KCP; i++; }
    else if (!strcmp(a, "--enet") && v) { cfg.server = v; cfg.mode = BENCH_ENET; i++; }
    else if (!strcmp(a, "--ws") && v) { cfg.server = v; cfg.mode = BENCH_KITE_WS; i++; }
    else if (!strcmp(a, "--ws-path") && v && v[0] == '/') { cfg.ws_path = v; i++; }
    else if (!strcmp(a, "--sessions")) { cfg.sessions = (uint32_t)num(a, v, 1, 1e6); i++; }
    else if (!strcmp(a, "--per-socket")) { cfg.per_socket = (uint32_t)num(a, v, 1, 1e6); i++; }
    else if (!strcmp(a, "--rate")) { cfg.rate = num(a, v, 0, 1e5); i++; }
    else if (!strcmp(a, "--size")) { cfg.size = (uint32_t)num(a, v, BENCH_HDR, 65536); i++; }
    else if (!strcmp(a, "--duration")) { cfg.duration_s = num(a, v, 0.1, 86400); i++; }
    else if (!strcmp(a, "--warmup")) { cfg.warmup_s = num(a, v, 0, 3600); i++; }
    else if (!strcmp(a, "--drain")) { cfg.drain_s = num(a, v, 0.1, 3600); i++; }
    else if (!strcmp(a, "--ping-ms")) { cfg.ping_ms = (uint32_t)num(a, v, 1, 3600000); i++; }
    else if (!strcmp(a, "--server-pid")) { cfg.server_pid = (int)num(a, v, 1, 1e9); i++; }
    else if (!strcmp(a, "--token-key") && v) { read_key(v, cfg.token_key); cfg.v2 = true; i++; }
    else if (!strcmp(a, "--protocol-id") && v) {
      char *end;
      errno = 0;
      cfg.protocol_id = strtoull(v, &end, 0);
      if (errno || *end || !*v)
        usage();
      have_pid = true;
      i++;
    } else usage();
  }
  if (cfg.v2 != have_pid ||
      (cfg.v2 && cfg.mode != BENCH_KITE_UDP && cfg.mode != BENCH_KITE_TCP) ||
      (cfg.v2 && floor)) {
    fprintf(stderr, "kite-bench: --token-key and --protocol-id go together, "
                    "with --udp or --tcp\n");
    return 2;
  }
  if (!cfg.server || (floor && cfg.mode != BENCH_KITE_UDP))
    usage(); /* the floor is --udp only */
  if (floor)
    cfg.mode = BENCH_FLOOR;
  if (cfg.mode == BENCH_FLOOR && cfg.size + 4 > 2048) {
    fprintf(stderr, "kite-bench: --floor sends one datagram per frame: --size at most 2044\n");
    return 2;
  }
  if (cfg.mode == BENCH_KCP && cfg.rate == 0) {
    /* bare KCP has no handshake or ping: nothing would reach the server */
    fprintf(stderr, "kite-bench: --kcp needs a --rate above 0\n");
    return 2;
  }
  raise_fd_limit();
  static bench_result res;
  int rc;
  switch (cfg.mode) {
  case BENCH_FLOOR: rc = bench_run_floor(&cfg, &res); break;
  case BENCH_KCP: rc = bench_run_kcp(&cfg, &res); break;
  case BENCH_KITE_WS: rc = bench_run_ws(&cfg, &res); break;
  case BENCH_ENET:
#ifdef KITE_BENCH_ENET
    rc = bench_run_enet(&cfg, &res);
#else
    fprintf(stderr, "kite-bench: built without ENet (install libenet-dev)\n");
    rc = -1;
#endif
    break;
  default: rc = bench_run_kite(&cfg, &res); break;
  }
  if (rc < 0)
    return 1;
  report(&cfg, &res);
  bool clean = res.failed == 0 && res.corrupt == 0 && res.out_of_order == 0 &&
               (cfg.mode == BENCH_FLOOR || res.lost == 0);
  return clean ? 0 : 1;
}
