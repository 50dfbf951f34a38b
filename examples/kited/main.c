/*
 * kited: kite's demo game server. Players log in with a name, list and
 * join rooms, chat, and move about an arena whose positions the room
 * broadcasts 20 times a second. kite-cli is its terminal client; the
 * messages are in docs/DEMO.md.
 *
 *   kited [--udp HOST:PORT] [--tcp HOST:PORT | --no-tcp] [--threads N]
 *         [--workers N] [--max-rooms N] [--metrics HOST:PORT]
 *         [--http-root DIR | --no-http] [--verbose]
 *         [--token-key FILE] [--protocol-id N] [--versions 1|2|1,2]
 *         [--redis HOST:PORT [--public-addr HOST:PORT] [--node-id ID]
 *          [--seats N]]
 *
 * Players connect over KCP or TCP; TCP listens on the UDP address unless
 * told otherwise. Browsers too: a plain GET on the TCP port gets the arena
 * page (web/arena, found beside kited: webroot.h), which then plays over a
 * WebSocket on the same port, so http://HOST:PORT/ is all a player needs.
 * With --token-key (the game's private key, 64 hex characters, never
 * printed) it serves protocol version 2 beside version 1 by default, so
 * stock KCP clients still play; --versions 2 is the production setting
 * (version 1 admits anyone, in clear).
 *
 * Hash worker mode: each room has an affinity key, so a room's players and
 * its tick run on one worker and its state needs no lock (game.h).
 */
#include "game.h"
#include "help.h"
#include "webroot.h"
#include "../v2_flags.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
  fprintf(stderr,
          "usage: kited [--udp HOST:PORT] [--tcp HOST:PORT | --no-tcp] [--threads N]\n"
          "             [--workers N] [--max-rooms N] [--metrics HOST:PORT]\n"
          "             [--http-root DIR | --no-http] [--verbose] [--token-key FILE]\n"
          "             [--protocol-id N] [--versions 1|2|1,2]\n"
          "             [--redis HOST:PORT [--public-addr HOST:PORT] [--node-id ID] [--seats N]]\n");
  exit(2);
}

static uint32_t number(const char *opt, const char *s) {
  char *end;
  errno = 0;
  unsigned long v = s ? strtoul(s, &end, 10) : 0;
  if (!s || *end || errno || v == 0 || v > 1000000) {
    fprintf(stderr, "kited: %s needs a number from 1 to 1000000\n", opt);
    usage();
  }
  return (uint32_t)v;
}

/* The arena's address for a browser: the TCP address's host (loopback's
 * in place of a wildcard) and the port it got. */
static void print_url(const char *addr, int port, const char *root) {
  const char *colon = strrchr(addr, ':');
  int hlen = colon ? (int)(colon - addr) : (int)strlen(addr);
  const char *host = addr;
  if ((hlen == 7 && !strncmp(addr, "0.0.0.0", 7)) || hlen == 0) {
    host = "127.0.0.1";
    hlen = 9;
  } else if (hlen == 4 && !strncmp(addr, "[::]", 4)) {
    host = "[::1]";
    hlen = 5;
  }
  printf("arena in a browser: http://%.*s:%d/ (files from %s)\n", hlen, host,
         port, root);
}

int main(int argc, char **argv) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.worker_mode = KITE_WORKERS_HASH;
  cfg.max_sessions = 10000;
  uint32_t max_rooms = 64;
  bool tcp = true;
  bool web_given = false; /* --http-root or --no-http: no default page */
  char web_buf[PATH_MAX];
  kited_cluster_opts co = {0}; /* --redis: a node of a cluster (cluster.c) */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(kited_help, stdout);
      return 0;
    }
    if (!strcmp(a, "--udp") && v) {
      cfg.udp_addr = v;
      i++;
    } else if (!strcmp(a, "--tcp") && v) {
      cfg.tcp_addr = v;
      i++;
    } else if (!strcmp(a, "--no-tcp")) {
      tcp = false;
    } else if (!strcmp(a, "--threads")) {
      cfg.threads = (int)number(a, v);
      i++;
    } else if (!strcmp(a, "--workers")) {
      cfg.workers = (int)number(a, v);
      i++;
    } else if (!strcmp(a, "--max-rooms")) {
      max_rooms = number(a, v);
      i++;
    } else if (!strcmp(a, "--metrics") && v) {
      cfg.metrics_addr = v;
      i++;
    } else if (!strcmp(a, "--http-root") && v) {
      cfg.http_root = *v ? v : NULL; /* plain GETs on the TCP port: files under it */
      web_given = true;
      i++;
    } else if (!strcmp(a, "--no-http")) {
      cfg.http_root = NULL;
      web_given = true;
    } else if (!strcmp(a, "--token-key")) {
      if (v2flag_token_key("kited", v, &cfg) < 0)
        usage();
      i++;
    } else if (!strcmp(a, "--protocol-id")) {
      if (v2flag_protocol_id("kited", v, &cfg) < 0)
        usage();
      i++;
    } else if (!strcmp(a, "--versions")) {
      if (v2flag_versions("kited", v, &cfg) < 0)
        usage();
      i++;
    } else if (!strcmp(a, "--redis") && v) {
      co.redis = v;
      i++;
    } else if (!strcmp(a, "--public-addr") && v) {
      co.public_addr = v;
      i++;
    } else if (!strcmp(a, "--node-id") && v) {
      co.node_id = v;
      i++;
    } else if (!strcmp(a, "--seats")) {
      co.seats = number(a, v);
      i++;
    } else if (!strcmp(a, "--verbose")) {
      cfg.log_level = KITE_LOG_DEBUG;
    } else {
      usage();
    }
  }

  if (!cfg.udp_addr)
    cfg.udp_addr = "127.0.0.1:7001";
  if (!tcp)
    cfg.tcp_addr = NULL;
  else if (!cfg.tcp_addr)
    cfg.tcp_addr = cfg.udp_addr; /* the same host and port number */
  if (!web_given && cfg.tcp_addr) {
    cfg.http_root = kited_web_root(web_buf, sizeof(web_buf));
    if (!cfg.http_root)
      fprintf(stderr, "kited: no arena page beside kited (web/ or %s); "
                      "--http-root DIR serves one\n", KITED_WEB_REL);
  }

  /* Signals go to this thread alone (sigwait below). */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  world w;
  if (world_init(&w, max_rooms) < 0) {
    fprintf(stderr, "kited: out of memory\n");
    return 1;
  }
  cfg.on_connect = game_on_connect;
  cfg.on_disconnect = game_on_disconnect;
  cfg.user = &w;
  /* versions left 0: 1 and 2 with a key (both: stock clients still
   * play), 1 alone without. */
  /* The lobby sends players (and lists in their tokens) the public
   * address: version 2 tokens must be taken for it too. */
  if (co.public_addr)
    cfg.public_addr = co.public_addr;
  int rc = kite_server_create(&w.srv, &cfg);
  memset(cfg.token_key, 0, sizeof(cfg.token_key)); /* the server has its copy */
  if (rc < 0) {
    fprintf(stderr, "kited: %s\n", kite_strerror(rc));
    world_free(&w);
    return 1;
  }
  game_route(w.srv, &w);
  co.udp_addr = cfg.udp_addr;
  if (co.redis && (rc = kited_cluster_start(&w, &co, kite_server_udp_port(w.srv))) < 0) {
    fprintf(stderr, "kited: cannot join the cluster: %s\n", kite_strerror(rc));
    kite_server_destroy(w.srv);
    world_free(&w);
    return 1;
  }
  if ((rc = kite_server_start(w.srv)) < 0) {
    fprintf(stderr, "kited: %s\n", kite_strerror(rc));
    kited_cluster_stop(&w);
    kite_server_destroy(w.srv);
    world_free(&w);
    return 1;
  }
  printf("kited listening on udp %s port %d", cfg.udp_addr, kite_server_udp_port(w.srv));
  if (cfg.tcp_addr)
    printf(", tcp port %d", kite_server_tcp_port(w.srv));
  if (cfg.metrics_addr)
    printf(", metrics on tcp port %d", kite_server_metrics_port(w.srv));
  printf("; try: kite-cli --name alice --join arena\n");
  if (cfg.tcp_addr && cfg.http_root)
    print_url(cfg.tcp_addr, kite_server_tcp_port(w.srv), cfg.http_root);
  fflush(stdout);

  int sig;
  sigwait(&sigs, &sig);
  kite_server_stop(w.srv); /* every player's on_disconnect runs */
  kited_cluster_stop(&w);  /* leaves the cluster: registration, leases */
  kite_server_stats st;
  kite_server_stats_get(w.srv, &st);
  printf("kited stopped: players %" PRIu64 ", frames in %" PRIu64 ", out %" PRIu64 "\n",
         st.sessions_opened, st.frames_in, st.frames_out);
  kite_server_destroy(w.srv);
  world_free(&w);
  return 0;
}
