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
 *         [--login HOST:PORT | --no-login] [--public-addr HOST:PORT]
 *         [--redis HOST:PORT [--node-id ID] [--seats N]]
 *
 * Players connect over KCP or TCP; TCP listens on the UDP address unless
 * told otherwise. Browsers too: a plain GET on the TCP port gets the arena
 * page (web/arena, found beside kited: webroot.h), which then plays over a
 * WebSocket on the same port, so http://HOST:PORT/ is all a player needs.
 * It serves protocol version 2 beside version 1 by default, so stock KCP
 * clients still play; --versions 2 is the production setting (version 1
 * admits anyone, in clear). Its tokens come from its own demo login route
 * (login.h: POST /login with a name, plain HTTP on loopback, the UDP port
 * + 1 by default), minted under a key kited draws at start and never
 * prints; --token-key FILE (64 hex characters) takes the key a real
 * backend shares instead.
 *
 * Hash worker mode: each room has an affinity key, so a room's players and
 * its tick run on one worker and its state needs no lock (game.h).
 */
#include "game.h"
#include "help.h"
#include "login.h"
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
          "             [--login HOST:PORT | --no-login] [--public-addr HOST:PORT]\n"
          "             [--redis HOST:PORT [--node-id ID] [--seats N]]\n");
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

/* |addr|'s host, for a client: loopback's in place of a wildcard. */
static void client_host(const char *addr, char *out, size_t cap) {
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
  snprintf(out, cap, "%.*s", hlen, host);
}

/* The port number |addr| asks for (0 when it has none). */
static int addr_port(const char *addr) {
  const char *colon = strrchr(addr, ':');
  return colon ? atoi(colon + 1) : 0;
}

/* The arena's address for a browser: the TCP address's host (loopback's
 * in place of a wildcard) and the port it got. */
static void print_url(const char *addr, int port, const char *root) {
  char host[256];
  client_host(addr, host, sizeof(host));
  printf("arena in a browser: http://%s:%d/ (files from %s)\n", host, port,
         root);
}

/* The login route, for kited's own address(es): --public-addr, else the
 * UDP address and the TCP one when it differs. */
static login *start_login(kite_server *srv, const kite_server_config *cfg,
                          const char *login_addr, const uint8_t *key) {
  char buf[2][300], host[256], laddr[300];
  const char *addrs[2];
  size_t n = 0;
  if (cfg->public_addr) {
    addrs[n++] = cfg->public_addr;
  } else {
    client_host(cfg->udp_addr, host, sizeof(host));
    snprintf(buf[0], sizeof(buf[0]), "%s:%d", host, kite_server_udp_port(srv));
    addrs[n++] = buf[0];
    if (cfg->tcp_addr) {
      client_host(cfg->tcp_addr, host, sizeof(host));
      snprintf(buf[1], sizeof(buf[1]), "%s:%d", host, kite_server_tcp_port(srv));
      if (strcmp(buf[0], buf[1]))
        addrs[n++] = buf[1];
    }
  }
  if (!login_addr) { /* loopback, the UDP port + 1 (any, with port 0, or
                        when TCP took that one) */
    int p = addr_port(cfg->udp_addr);
    if (p && cfg->tcp_addr && kite_server_tcp_port(srv) == p + 1)
      p = -1;
    snprintf(laddr, sizeof(laddr), "127.0.0.1:%d", p ? p + 1 : 0);
    login_addr = laddr;
  }
  login_config lc = {.addr = login_addr, .key = key,
                     .protocol_id = cfg->protocol_id, .token_addrs = addrs,
                     .ntoken_addrs = n};
  login *l;
  if (login_start(&l, &lc) < 0)
    return NULL;
  char lhost[256];
  client_host(login_addr, lhost, sizeof(lhost));
  printf("login: POST http://%s:%d/login with name=NAME answers a token for "
         "%s%s%s (plain HTTP for the demo: production puts TLS and real "
         "authentication in front)\n", lhost, login_port(l), addrs[0],
         n > 1 ? " and " : "", n > 1 ? addrs[1] : "");
  printf("try: kite-cli --login http://%s:%d/login --name alice --join arena\n",
         lhost, login_port(l));
  client_host(cfg->udp_addr, host, sizeof(host));
  if (!cfg->public_addr && strncmp(cfg->udp_addr, host, strlen(host)))
    printf("login: tokens name loopback for the wildcard address; "
           "--public-addr HOST:PORT names the one other players reach\n");
  return l;
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
  const char *login_addr = NULL;
  bool login_on = true;
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
    } else if (!strcmp(a, "--node-id") && v) {
      co.node_id = v;
      i++;
    } else if (!strcmp(a, "--seats")) {
      co.seats = number(a, v);
      i++;
    } else if (!strcmp(a, "--login") && v) {
      login_addr = v;
      i++;
    } else if (!strcmp(a, "--no-login")) {
      login_on = false;
    } else if (!strcmp(a, "--public-addr") && v) {
      /* Where players reach kited (behind NAT): tokens name it, the
       * server takes tokens naming it, and the cluster's lobby sends
       * players there. */
      cfg.public_addr = v;
      co.public_addr = v;
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
  /* No --token-key: a key of kited's own, drawn now and never shown.
   * kited's login route is then the only backend, so nothing else needs
   * it; tokens from before a restart no longer open. */
  bool own_key = !cfg.token_key_set;
  if (own_key) {
    if (kite_token_key_new(cfg.token_key) < 0) {
      fprintf(stderr, "kited: cannot draw a token key\n");
      world_free(&w);
      return 1;
    }
    cfg.token_key_set = true;
    if (co.redis)
      fprintf(stderr, "kited: --redis without --token-key: the lobby's tokens "
                      "will not open here (give both the same key)\n");
  }
  /* versions left 0: 1 and 2 (both: stock clients still play). */
  bool v2 = cfg.versions == 0 || (cfg.versions & KITE_VERSION_2);
  uint8_t key[KITE_TOKEN_KEY_BYTES]; /* the login route's copy, until it has its own */
  memcpy(key, cfg.token_key, sizeof(key));
  int rc = kite_server_create(&w.srv, &cfg);
  memset(cfg.token_key, 0, sizeof(cfg.token_key)); /* the server has its copy */
  if (rc < 0) {
    fprintf(stderr, "kited: %s\n", kite_strerror(rc));
    explicit_bzero(key, sizeof(key));
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
    explicit_bzero(key, sizeof(key));
    kite_server_destroy(w.srv);
    world_free(&w);
    return 1;
  }
  printf("kited listening on udp %s port %d", cfg.udp_addr, kite_server_udp_port(w.srv));
  if (cfg.tcp_addr)
    printf(", tcp port %d", kite_server_tcp_port(w.srv));
  if (cfg.metrics_addr)
    printf(", metrics on tcp port %d", kite_server_metrics_port(w.srv));
  printf("; protocol versions %s\n", !v2 ? "1" : cfg.versions == KITE_VERSION_2 ? "2" : "1 and 2");
  printf("token key: %s\n", own_key ? "drawn at start for kited's own login, "
                                       "held in memory only (--token-key FILE "
                                       "shares a backend's)"
                                     : "from --token-key");
  login *lg = NULL;
  if (login_on && v2) {
    lg = start_login(w.srv, &cfg, login_addr, key);
    if (!lg) {
      explicit_bzero(key, sizeof(key));
      kite_server_stop(w.srv);
      kite_server_destroy(w.srv);
      world_free(&w);
      return 1;
    }
  } else if (login_on) {
    printf("login: off (--versions 1: tokens would open nothing)\n");
  }
  explicit_bzero(key, sizeof(key)); /* the login route has its copy */
  if (cfg.tcp_addr && cfg.http_root)
    print_url(cfg.tcp_addr, kite_server_tcp_port(w.srv), cfg.http_root);
  fflush(stdout);

  int sig;
  sigwait(&sigs, &sig);
  if (lg) {
    login_stats ls;
    login_stats_get(lg, &ls);
    login_stop(lg);
    printf("kited login: tokens %" PRIu64 ", refused %" PRIu64
           ", timeouts %" PRIu64 ", evictions %" PRIu64
           ", accept pauses %" PRIu64 "\n",
           ls.outcome[LOGIN_tokens],
           ls.outcome[LOGIN_bad_requests] + ls.outcome[LOGIN_bad_names] +
               ls.outcome[LOGIN_not_found] + ls.outcome[LOGIN_bad_method] +
               ls.outcome[LOGIN_no_length] + ls.outcome[LOGIN_too_large] +
               ls.outcome[LOGIN_bad_type] + ls.outcome[LOGIN_mint_failures],
           ls.timeouts, ls.evictions, ls.accept_backoffs);
  }
  kite_server_stop(w.srv); /* every player's on_disconnect runs */
  kited_cluster_stop(&w);  /* leaves the cluster: registration, leases */
  kite_server_stats st;
  kite_server_stats_get(w.srv, &st);
  printf("kited stopped: players %" PRIu64 " (%u logged in over protocol 2), "
         "frames in %" PRIu64 ", out %" PRIu64 "\n", st.sessions_opened,
         atomic_load(&w.logins_v2), st.frames_in, st.frames_out);
  kite_server_destroy(w.srv);
  world_free(&w);
  return 0;
}
