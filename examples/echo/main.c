/*
 * kite-echo: echoes every frame back to its session with the same msg_id.
 *
 *   kite-echo [--udp HOST:PORT] [--tcp HOST:PORT] [--threads N] [--max-sessions N]
 *             [--idle-timeout-ms N] [--wake-coalesce-us N] [--segments N] [--no-steering]
 *             [--verbose]
 *             [--workers N] [--worker-mode inline|hash|bind|dynamic]
 *             [--metrics HOST:PORT] [--tcp-per-addr N] [--tcp-per-prefix N]
 *             [--token-key FILE] [--protocol-id N] [--versions 1|2|1,2]
 *
 * --tcp serves TCP too (PROTOCOL.md section 5); port 0 there means the UDP
 * port's number. Prints one line when it is listening; on SIGINT or SIGTERM it stops
 * gracefully (sessions flushed, CLOSE sent) and prints its counters. It is
 * the benchmarks' server, and kite-bench opens thousands of sessions from
 * one address, so it sets no per-source UDP session limits
 * (docs/SECURITY.md) and its per-source TCP limits are off unless
 * --tcp-per-addr / --tcp-per-prefix set them (the library's defaults are
 * 256 and 1024).
 *
 * Protocol version 2 (docs/PROTOCOL-v2.md): --token-key FILE (the game's
 * private key as 64 hex characters; never printed) serves it beside
 * version 1, --versions picks (a production server: 2 alone), and
 * --protocol-id N is the game's id in its tokens.
 */
#include "kite/kite.h"
#include "help.h"
#include "../v2_flags.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_message(kite_server *srv, kite_session_id id, uint16_t msg_id,
                       const uint8_t *body, size_t len, void *user) {
  (void)user;
  int rc = kite_session_send(srv, id, msg_id, body, len);
  if (rc == KITE_EFULL)
    kite_session_close(srv, id); /* it does not read its echoes: let it go */
  /* KITE_ENOMEM: the shard's budget is spent (overload, not this player):
   * this echo is shed, the session kept. */
}

/* Every application msg_id comes here: a reliable message is echoed on the
 * stream, an unreliable one on the lane (same msg_id, sequenced when it
 * came sequenced), so any v2 client can test the lane against kite-echo. */
static void on_request(const kite_request *req) {
  if (!(req->flags & KITE_REQ_UNRELIABLE)) {
    on_message(req->srv, req->session, req->msg_id, req->body, req->len, NULL);
    return;
  }
  unsigned f = req->flags & KITE_REQ_SEQUENCED ? KITE_UNRELIABLE_SEQUENCED : 0;
  /* Over the session's budget or the shard's slots: lost, as on the wire. */
  kite_session_send_unreliable(req->srv, req->session, req->msg_id, req->body,
                               req->len, f);
}

static void usage(void) {
  fprintf(stderr,
          "usage: kite-echo [--udp HOST:PORT] [--tcp HOST:PORT] [--threads N]\n"
          "                 [--max-sessions N]\n"
          "                 [--idle-timeout-ms N] [--wake-coalesce-us N] [--segments N]\n"
          "                 [--no-steering] [--verbose]\n"
          "                 [--workers N] [--worker-mode inline|hash|bind|dynamic]\n"
          "                 [--metrics HOST:PORT] [--tcp-per-addr N]\n"
          "                 [--tcp-per-prefix N] [--http-root DIR]\n"
          "                 [--token-key FILE] [--protocol-id N]\n"
          "                 [--versions 1|2|1,2]\n");
  exit(2);
}

static uint32_t number(const char *opt, const char *s) {
  char *end;
  errno = 0;
  unsigned long v = s ? strtoul(s, &end, 10) : 0;
  if (!s || *end || errno || v > UINT32_MAX) {
    fprintf(stderr, "kite-echo: %s needs a number\n", opt);
    usage();
  }
  return (uint32_t)v;
}

int main(int argc, char **argv) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.on_message = on_message;
  /* The benchmarks' server: kite-bench opens thousands of sessions from
   * one address, so no per-source limits (a game server keeps them). */
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.tcp_max_per_addr = 0; /* a benchmark's load comes from one address */
  cfg.tcp_max_per_prefix = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(kite_echo_help, stdout);
      return 0;
    }
    if (!strcmp(a, "--udp") && v) {
      cfg.udp_addr = v;
      i++;
    } else if (!strcmp(a, "--tcp") && v) {
      cfg.tcp_addr = v;
      i++;
    } else if (!strcmp(a, "--threads")) {
      cfg.threads = (int)number(a, v);
      i++;
    } else if (!strcmp(a, "--max-sessions")) {
      cfg.max_sessions = number(a, v);
      i++;
    } else if (!strcmp(a, "--idle-timeout-ms")) {
      cfg.idle_timeout_ms = number(a, v);
      i++;
    } else if (!strcmp(a, "--wake-coalesce-us")) {
      cfg.wake_coalesce_us = number(a, v);
      i++;
    } else if (!strcmp(a, "--segments")) {
      cfg.shard_segments_max = number(a, v);
      i++;
    } else if (!strcmp(a, "--workers")) {
      cfg.workers = (int)number(a, v);
      i++;
    } else if (!strcmp(a, "--worker-mode") && v) {
      int m = kite_worker_mode_parse(v);
      if (m < 0) {
        fprintf(stderr, "kite-echo: unknown worker mode \"%s\"\n", v);
        usage();
      }
      cfg.worker_mode = (kite_worker_mode)m;
      i++;
    } else if (!strcmp(a, "--metrics") && v) {
      cfg.metrics_addr = v;
      i++;
    } else if (!strcmp(a, "--http-root") && v) {
      cfg.http_root = v; /* plain GETs on the TCP port: files under it */
      i++;
    } else if (!strcmp(a, "--tcp-per-addr")) {
      cfg.tcp_max_per_addr = number(a, v);
      i++;
    } else if (!strcmp(a, "--tcp-per-prefix")) {
      cfg.tcp_max_per_prefix = number(a, v);
      i++;
    } else if (!strcmp(a, "--token-key")) {
      if (v2flag_token_key("kite-echo", v, &cfg) < 0)
        usage();
      i++;
    } else if (!strcmp(a, "--protocol-id")) {
      if (v2flag_protocol_id("kite-echo", v, &cfg) < 0)
        usage();
      i++;
    } else if (!strcmp(a, "--versions")) {
      if (v2flag_versions("kite-echo", v, &cfg) < 0)
        usage();
      i++;
    } else if (!strcmp(a, "--no-steering")) {
      cfg.steering = false;
    } else if (!strcmp(a, "--verbose")) {
      cfg.log_level = KITE_LOG_DEBUG;
    } else {
      usage();
    }
  }

  /* Signals go to this thread alone (sigwait below); shard threads inherit
   * the mask, so a signal never interrupts a shard mid-batch. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  kite_server *srv;
  int rc = kite_server_create(&srv, &cfg);
  memset(cfg.token_key, 0, sizeof(cfg.token_key)); /* the server has its copy */
  if (rc < 0) {
    fprintf(stderr, "kite-echo: %s\n", kite_strerror(rc));
    return 1;
  }
  for (uint32_t m = 1; m < 0xFF00 && rc == 0; m++) /* see on_request */
    rc = kite_server_route(srv, (uint16_t)m, on_request, NULL);
  if (rc < 0 || (rc = kite_server_start(srv)) < 0) {
    fprintf(stderr, "kite-echo: %s\n", kite_strerror(rc));
    kite_server_destroy(srv);
    return 1;
  }
  printf("kite-echo listening on udp %s port %d, workers %s", cfg.udp_addr,
         kite_server_udp_port(srv), kite_worker_mode_name(cfg.worker_mode));
  if (cfg.tcp_addr)
    printf(", tcp port %d", kite_server_tcp_port(srv));
  if (cfg.metrics_addr)
    printf(", metrics on tcp port %d", kite_server_metrics_port(srv));
  unsigned versions = cfg.versions ? cfg.versions
                                   : KITE_VERSION_1 | (cfg.token_key_set ? KITE_VERSION_2 : 0);
  printf(", versions %s",
         versions == (KITE_VERSION_1 | KITE_VERSION_2) ? "1,2"
         : versions == KITE_VERSION_2                  ? "2"
                                                       : "1");
  printf("\n");
  fflush(stdout);

  int sig;
  sigwait(&sigs, &sig);
  kite_server_stop(srv);
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  printf("kite-echo stopped (%s): sessions opened %" PRIu64 ", frames in %" PRIu64
         ", out %" PRIu64 ", datagrams in %" PRIu64 ", out %" PRIu64
         ", tcp connections %" PRIu64 ", wake-ups %" PRIu64 " (held %" PRIu64
         "), retransmits %" PRIu64 ", rx overflows %" PRIu64 "\n",
         sig == SIGINT ? "SIGINT" : "SIGTERM", st.sessions_opened, st.frames_in,
         st.frames_out, st.dgrams_in, st.dgrams_out, st.tcp_accepted,
         st.wakeups, st.wake_holds, st.retransmits, st.rx_overflows);
  kite_server_destroy(srv);
  return 0;
}
