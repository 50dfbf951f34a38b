/*
 * kite-lobby: the login service of a kite cluster (docs/CLUSTER.md). A
 * player asks, over plain HTTP/1.1,
 *
 *   GET  /login?name=alice&room=arena      (POST is answered the same)
 *
 * and gets the node to play on, placed by the Redis directory in one Lua
 * script (kite_directory_place: the room's node, or the least-loaded one,
 * a seat reserved), with a version-2 connect token for that node's
 * address (kite_token_mint):
 *
 *   200 {"name":"alice","room":"arena","node":"n1","addr":"127.0.0.1:7101",
 *        "held":false,"ttl":30,"token":"<1600 hex digits>"}
 *   503 {"error":"directory unavailable: Redis did not answer; retry"}
 *
 * One thread, poll(): at most --max-conns connections, each with a
 * bounded request head (src/proto/http_req.c), a fixed answer buffer and
 * a deadline. A placement blocks the loop for at most about twice the
 * Redis timeout: a lobby is scaled by running several.
 */
#include "kite/cluster.h"
#include "kite/error.h"
#include "kite/token.h"

#include "help.h"
#include "proto/http_req.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OUT_CAP 4096
#define CONN_DEADLINE_MS 5000

typedef struct conn {
  int fd; /* -1: free slot */
  kite__http_req req;
  char out[OUT_CAP];
  size_t out_len, out_sent;
  uint64_t deadline_ms;
} conn;

typedef struct lobby {
  kite_directory *dir;
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  uint64_t protocol_id;
  uint32_t ttl_s, lease_ms;
  uint64_t next_client_id;
  /* Counters: the loop's thread only; printed at exit. */
  uint64_t logins, refused_redis, refused_nonode, refused_full,
      refused_request, refused_conns;
} lobby;

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void usage(void) {
  fprintf(stderr, "usage: kite-lobby --redis HOST:PORT [--listen HOST:PORT]"
                  " [--key-file FILE | --key-env NAME] [--protocol-id N]"
                  " [--ttl S] [--max-conns N]; --help for all\n");
  exit(2);
}

static void answer(conn *c, int status, const char *body) {
  const char *text = status == 200 ? "OK" : status == 400 ? "Bad Request"
                     : status == 404 ? "Not Found" : "Service Unavailable";
  int n = snprintf(c->out, sizeof(c->out),
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\n%s",
                   status, text, strlen(body), body);
  c->out_len = n < 0 || (size_t)n >= sizeof(c->out) ? 0 : (size_t)n;
  c->out_sent = 0;
}

/* The value of |key| in the query |q| into |out| (1..cap-1 bytes of
 * A-Z a-z 0-9 . _ -, no decoding needed for a demo's names). */
static bool param(const char *q, const char *key, char *out, size_t cap) {
  size_t kl = strlen(key);
  for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
    if (strncmp(p, key, kl) || p[kl] != '=')
      continue;
    const char *v = p + kl + 1;
    size_t n = strcspn(v, "&");
    if (n == 0 || n >= cap)
      return false;
    for (size_t i = 0; i < n; i++) {
      char ch = v[i];
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
        return false;
    }
    memcpy(out, v, n);
    out[n] = 0;
    return true;
  }
  return false;
}

static void login(lobby *lb, conn *c, const char *query) {
  char name[17], room[17];
  if (!query || !param(query, "name", name, sizeof(name)) ||
      !param(query, "room", room, sizeof(room))) {
    lb->refused_request++;
    answer(c, 400, "{\"error\":\"name and room: 1 to 16 of A-Z a-z 0-9 . _ -\"}");
    return;
  }
  kite_placement pl;
  int rc = kite_directory_place(lb->dir, room, lb->lease_ms, &pl);
  if (rc == KITE_EAGAIN) {
    lb->refused_redis++;
    answer(c, 503, "{\"error\":\"directory unavailable: Redis did not answer; retry\"}");
    return;
  }
  if (rc == KITE_ENOTFOUND) {
    lb->refused_nonode++;
    answer(c, 503, "{\"error\":\"no game node is registered; retry\"}");
    return;
  }
  if (rc < 0) {
    lb->refused_full++;
    answer(c, 503, "{\"error\":\"every game node is full; retry\"}");
    return;
  }
  /* The token names the node the directory chose: the player connects
   * there with protocol version 2 (PROTOCOL-v2.md section 2). */
  const char *addrs[1] = {pl.addr};
  kite_token_params p = {.protocol_id = lb->protocol_id,
                         .client_id = lb->next_client_id++,
                         .ttl_s = lb->ttl_s, .addrs = addrs, .naddrs = 1,
                         .user_data = name, .user_data_len = strlen(name)};
  uint8_t tok[KITE_TOKEN_BYTES];
  char hex[2 * KITE_TOKEN_BYTES + 1];
  if (kite_token_mint(tok, lb->key, &p) < 0) {
    lb->refused_nonode++;
    answer(c, 503, "{\"error\":\"the node's address cannot go in a token\"}");
    return;
  }
  sodium_bin2hex(hex, sizeof(hex), tok, sizeof(tok));
  char body[OUT_CAP - 256];
  snprintf(body, sizeof(body),
           "{\"name\":\"%s\",\"room\":\"%s\",\"node\":\"%s\",\"addr\":\"%s\","
           "\"held\":%s,\"ttl\":%u,\"token\":\"%s\"}",
           name, room, pl.node_id, pl.addr, pl.held ? "true" : "false",
           lb->ttl_s, hex);
  lb->logins++;
  answer(c, 200, body);
}

static void route(lobby *lb, conn *c) {
  const kite__http_req *r = &c->req;
  bool get_or_post = !strcmp(r->method_str, "GET") || !strcmp(r->method_str, "POST");
  char *q = strchr(c->req.target, '?');
  size_t plen = q ? (size_t)(q - c->req.target) : strlen(c->req.target);
  if (get_or_post && plen == 6 && !strncmp(c->req.target, "/login", 6)) {
    login(lb, c, q ? q + 1 : NULL);
  } else {
    lb->refused_request++;
    answer(c, 404, "{\"error\":\"GET or POST /login?name=NAME&room=ROOM\"}");
  }
}

static void conn_close(conn *c) {
  close(c->fd);
  c->fd = -1;
}

static void conn_read(lobby *lb, conn *c) {
  uint8_t buf[2048];
  ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
  if (n <= 0) {
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
      conn_close(c);
    return;
  }
  size_t used;
  int rc = kite__http_req_feed(&c->req, buf, (size_t)n, &used);
  if (rc == KITE_EAGAIN)
    return;
  if (rc < 0) {
    lb->refused_request++;
    answer(c, 400, "{\"error\":\"malformed request\"}");
    return;
  }
  route(lb, c); /* a POST's body, if any, is not read: the query is used */
}

static void conn_write(conn *c) {
  ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
                   MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(c);
    return;
  }
  c->out_sent += (size_t)n;
  if (c->out_sent == c->out_len) {
    shutdown(c->fd, SHUT_WR);
    conn_close(c);
  }
}

static int listen_on(const char *addr, int *port) {
  char host[64];
  const char *colon = strrchr(addr, ':');
  if (!colon || (size_t)(colon - addr) >= sizeof(host))
    return -1;
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = 0;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t len = sizeof(sa);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
      listen(fd, 512) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

static int load_key(lobby *lb, const char *file, const char *env) {
  if (!file && !env) { /* a demo's key: nodes cannot check tokens yet */
    fprintf(stderr, "kite-lobby: no --key-file or --key-env: tokens are sealed"
                    " under a random key of this run\n");
    return kite_token_key_new(lb->key);
  }
  char text[256] = {0};
  if (file) {
    FILE *f = fopen(file, "r");
    if (!f)
      return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
  } else if (getenv(env)) {
    snprintf(text, sizeof(text), "%s", getenv(env));
  }
  int rc = kite_token_key_parse(lb->key, text);
  sodium_memzero(text, sizeof(text));
  return rc;
}

static uint32_t number(const char *opt, const char *s, uint32_t max) {
  char *end;
  errno = 0;
  unsigned long long v = s ? strtoull(s, &end, 0) : 0;
  if (!s || *end || errno || v == 0 || v > max) {
    fprintf(stderr, "kite-lobby: %s needs a number from 1 to %u\n", opt, max);
    usage();
  }
  return (uint32_t)v;
}

int main(int argc, char **argv) {
  const char *listen_addr = "127.0.0.1:8080", *redis = NULL, *prefix = "kite:";
  const char *key_file = NULL, *key_env = NULL;
  uint32_t max_conns = 256;
  lobby lb = {.protocol_id = 0x4B495445 /* "KITE" */, .ttl_s = 30,
              .lease_ms = 3000};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(kite_lobby_help, stdout);
      return 0;
    }
    if (!v)
      usage();
    i++;
    if (!strcmp(a, "--listen"))
      listen_addr = v;
    else if (!strcmp(a, "--redis"))
      redis = v;
    else if (!strcmp(a, "--prefix"))
      prefix = v;
    else if (!strcmp(a, "--key-file"))
      key_file = v;
    else if (!strcmp(a, "--key-env"))
      key_env = v;
    else if (!strcmp(a, "--protocol-id"))
      lb.protocol_id = number(a, v, UINT32_MAX);
    else if (!strcmp(a, "--ttl"))
      lb.ttl_s = number(a, v, KITE_TOKEN_TTL_MAX);
    else if (!strcmp(a, "--lease-ms"))
      lb.lease_ms = number(a, v, 600000);
    else if (!strcmp(a, "--max-conns"))
      max_conns = number(a, v, 65536);
    else
      usage();
  }
  if (!redis || (key_file && key_env))
    usage();
  if (sodium_init() < 0 || load_key(&lb, key_file, key_env) < 0) {
    fprintf(stderr, "kite-lobby: the key is not 64 hexadecimal characters\n");
    return 1;
  }
  randombytes_buf(&lb.next_client_id, sizeof(lb.next_client_id));
  if (kite_directory_open(&lb.dir, redis, prefix, 500) < 0) {
    fprintf(stderr, "kite-lobby: --redis must be HOST:PORT, --prefix 1 to 32 bytes\n");
    return 2;
  }
  int port, lfd = listen_on(listen_addr, &port);
  conn *conns = calloc(max_conns, sizeof(*conns));
  struct pollfd *pf = calloc(max_conns + 1, sizeof(*pf));
  if (lfd < 0 || !conns || !pf) {
    fprintf(stderr, "kite-lobby: cannot listen on %s (IPv4 HOST:PORT): %s\n",
            listen_addr, strerror(errno));
    return 1;
  }
  for (uint32_t i = 0; i < max_conns; i++)
    conns[i].fd = -1;
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  printf("kite-lobby listening on http://127.0.0.1:%d (redis %s); try: curl"
         " 'http://127.0.0.1:%d/login?name=alice&room=arena'\n", port, redis, port);
  fflush(stdout);

  while (!stopping) {
    pf[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (uint32_t i = 0; i < max_conns; i++)
      pf[i + 1] = (struct pollfd){.fd = conns[i].fd,
                                  .events = conns[i].out_len ? POLLOUT : POLLIN};
    if (poll(pf, max_conns + 1, 250) < 0 && errno != EINTR)
      break;
    uint64_t now = now_ms();
    if (pf[0].revents & POLLIN) {
      int fd;
      while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        uint32_t i = 0;
        while (i < max_conns && conns[i].fd >= 0)
          i++;
        if (i == max_conns) { /* over --max-conns: refused, counted */
          lb.refused_conns++;
          close(fd);
          continue;
        }
        conns[i].fd = fd;
        conns[i].out_len = conns[i].out_sent = 0;
        conns[i].deadline_ms = now + CONN_DEADLINE_MS;
        kite__http_req_init(&conns[i].req, NULL);
      }
    }
    for (uint32_t i = 0; i < max_conns; i++) {
      conn *c = &conns[i];
      if (c->fd < 0 || pf[i + 1].fd != c->fd)
        continue;
      if (pf[i + 1].revents & (POLLERR | POLLHUP | POLLNVAL) && !c->out_len)
        conn_close(c);
      else if (pf[i + 1].revents & POLLIN && !c->out_len)
        conn_read(&lb, c);
      if (c->fd >= 0 && c->out_len && pf[i + 1].revents & (POLLOUT | POLLIN))
        conn_write(c);
      if (c->fd >= 0 && now >= c->deadline_ms)
        conn_close(c); /* too slow a peer: its slot is worth more */
    }
  }
  printf("kite-lobby stopped: logins %" PRIu64 ", refused: redis %" PRIu64
         ", no node %" PRIu64 ", full %" PRIu64 ", bad request %" PRIu64
         ", over max-conns %" PRIu64 "\n",
         lb.logins, lb.refused_redis, lb.refused_nonode, lb.refused_full,
         lb.refused_request, lb.refused_conns);
  for (uint32_t i = 0; i < max_conns; i++)
    if (conns[i].fd >= 0)
      close(conns[i].fd);
  close(lfd);
  free(conns);
  free(pf);
  kite_directory_close(lb.dir);
  sodium_memzero(lb.key, sizeof(lb.key));
  return 0;
}
