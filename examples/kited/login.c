/*
 * kited's login route (login.h): its thread, its connections, its answers.
 */
#include "login.h"

#include "demo_proto.h"
#include "kite/kite.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOGIN_IN_MAX (LOGIN_HEAD_MAX + LOGIN_BODY_MAX)
#define LOGIN_OUT_MAX 1024 /* a head of under 200 bytes and the token */
#define LOGIN_ACCEPTS 16   /* accepted per wakeup */
/* The pause after accept() fails for want of descriptors or memory: the
 * connection stays queued, so retrying at once would spin. */
#define LOGIN_BACKOFF_MS 100

enum { CONN_FREE, CONN_READING, CONN_WRITING, CONN_DRAINING };

typedef struct conn {
  int fd;
  int state;
  uint64_t deadline_ms;
  uint64_t seq;           /* accept order: the oldest is evicted */
  size_t in_len, out_len, out_off;
  char in[LOGIN_IN_MAX];
  uint8_t out[LOGIN_OUT_MAX];
} conn;

struct login {
  pthread_t thread;
  int lfd, port;
  int wake[2];            /* a pipe: login_stop() writes, the thread wakes */
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  uint64_t protocol_id;
  char addrs[KITE_TOKEN_ADDRS_MAX][80];
  const char *addr_ptrs[KITE_TOKEN_ADDRS_MAX];
  size_t naddrs;
  uint32_t ttl_s, conns_max, deadline_ms;
  /* Owned by the login thread from login_start() to login_stop(). */
  conn *conns;
  struct pollfd *pfds;
  uint64_t next_seq, next_client_id;
  uint64_t accept_after_ms; /* accept() paused until then (0: not paused) */
  /* Written by the login thread, read by any (login_stats_get()). */
  _Atomic uint64_t outcome[LOGIN_OUTCOME_COUNT];
  _Atomic uint64_t timeouts, evictions, accept_backoffs;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void bump(_Atomic uint64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void conn_close(conn *c) {
  close(c->fd);
  explicit_bzero(c->out, sizeof(c->out)); /* the token and its keys */
  c->fd = -1;
  c->state = CONN_FREE;
  c->in_len = c->out_len = c->out_off = 0;
}

static void answer_error(conn *c, int outcome) {
  int status = login_status(outcome);
  const char *reason = status == 404 ? "Not Found"
                       : status == 405 ? "Method Not Allowed"
                       : status == 411 ? "Length Required"
                       : status == 413 ? "Content Too Large"
                       : status == 415 ? "Unsupported Media Type"
                       : status == 500 ? "Internal Server Error"
                                       : "Bad Request";
  const char *help = login_outcome_help(outcome);
  int n = snprintf((char *)c->out, sizeof(c->out),
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                   "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%s\n",
                   status, reason, strlen(help) + 1,
                   status == 405 ? "Allow: POST\r\n" : "", help);
  c->out_len = (size_t)n;
}

static void answer(login *l, conn *c, int outcome, const char *name) {
  if (outcome == LOGIN_tokens) {
    static const char head[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/octet-stream\r\n"
                               "Content-Length: 800\r\n"
                               "Cache-Control: no-store\r\n"
                               "Connection: close\r\n\r\n";
    kite_token_params p = {.protocol_id = l->protocol_id,
                           .client_id = ++l->next_client_id,
                           .ttl_s = l->ttl_s,
                           .addrs = l->addr_ptrs,
                           .naddrs = l->naddrs,
                           .user_data = name,
                           .user_data_len = strlen(name)};
    memcpy(c->out, head, sizeof(head) - 1);
    int rc = kite_token_mint(c->out + sizeof(head) - 1, l->key, &p);
    if (rc == 0) {
      c->out_len = sizeof(head) - 1 + KITE_TOKEN_BYTES;
    } else {
      fprintf(stderr, "kited: login: cannot mint a token: %s\n",
              kite_strerror(rc));
      outcome = LOGIN_mint_failures;
    }
  }
  if (outcome != LOGIN_tokens)
    answer_error(c, outcome);
  bump(&l->outcome[outcome]);
  c->state = CONN_WRITING;
}

/* Reads what the connection has; answers once the request is judged. */
static void conn_read(login *l, conn *c) {
  for (;;) {
    if (c->state == CONN_DRAINING) { /* the answer is out: wait for EOF */
      char sink[512];
      ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        conn_close(c);
      if (n <= 0)
        return;
      continue;
    }
    if (c->state != CONN_READING)
      return;
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0) { /* gone before a whole request: nothing to answer */
      conn_close(c);
      return;
    }
    c->in_len += (size_t)n;
    char name[DEMO_NAME_MAX + 1];
    int o = login_parse(c->in, c->in_len, name);
    if (o == LOGIN_MORE && c->in_len == sizeof(c->in))
      o = LOGIN_too_large; /* cannot happen: the parser stops sooner */
    if (o != LOGIN_MORE) {
      answer(l, c, o, name);
      return;
    }
  }
}

static void conn_write(conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                     MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n < 0) {
      conn_close(c);
      return;
    }
    c->out_off += (size_t)n;
  }
  explicit_bzero(c->out, sizeof(c->out));
  /* Closing with the request's tail unread would reset the connection and
   * could lose the answer: half-close, then read until the client's EOF. */
  shutdown(c->fd, SHUT_WR);
  c->state = CONN_DRAINING;
}

static void accept_some(login *l) {
  for (int i = 0; i < LOGIN_ACCEPTS; i++) {
    int fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                   errno == ENOMEM)) {
      bump(&l->accept_backoffs);
      l->accept_after_ms = now_ms() + LOGIN_BACKOFF_MS;
      return;
    }
    if (fd < 0)
      return; /* EAGAIN, or a connection reset while queued */
    conn *slot = NULL, *oldest = NULL;
    for (uint32_t j = 0; j < l->conns_max && !slot; j++) {
      conn *c = &l->conns[j];
      if (c->state == CONN_FREE)
        slot = c;
      else if (!oldest || c->seq < oldest->seq)
        oldest = c;
    }
    if (!slot) {
      bump(&l->evictions); /* before the close a client may see */
      conn_close(oldest);
      slot = oldest;
    }
    slot->fd = fd;
    slot->state = CONN_READING;
    slot->seq = ++l->next_seq;
    slot->deadline_ms = now_ms() + l->deadline_ms;
  }
}

static void *login_main(void *arg) {
  login *l = arg;
  for (;;) {
    uint64_t now = now_ms();
    int wait = -1;
    nfds_t n = 0;
    if (l->accept_after_ms && now >= l->accept_after_ms)
      l->accept_after_ms = 0;
    if (l->accept_after_ms)
      wait = (int)(l->accept_after_ms - now);
    l->pfds[n++] = (struct pollfd){.fd = l->wake[0], .events = POLLIN};
    l->pfds[n++] = (struct pollfd){.fd = l->lfd,
                                   .events = l->accept_after_ms ? 0 : POLLIN};
    for (uint32_t i = 0; i < l->conns_max; i++) {
      conn *c = &l->conns[i];
      if (c->state != CONN_FREE && now >= c->deadline_ms) {
        if (c->state != CONN_DRAINING)
          bump(&l->timeouts);
        conn_close(c);
      }
      if (c->state == CONN_FREE)
        continue;
      int left = (int)(c->deadline_ms - now);
      if (wait < 0 || left < wait)
        wait = left;
      l->pfds[n++] = (struct pollfd){
          .fd = c->fd, .events = c->state == CONN_WRITING ? POLLOUT : POLLIN};
    }
    if (poll(l->pfds, n, wait) < 0 && errno != EINTR)
      break;
    if (l->pfds[0].revents)
      break;
    for (nfds_t k = 2; k < n; k++) {
      if (!l->pfds[k].revents)
        continue;
      for (uint32_t i = 0; i < l->conns_max; i++) {
        conn *c = &l->conns[i];
        if (c->fd != l->pfds[k].fd || c->state == CONN_FREE)
          continue;
        if (c->state == CONN_WRITING)
          conn_write(c);
        else
          conn_read(l, c);
        if (c->state == CONN_WRITING) /* answered: send at once */
          conn_write(c);
        break;
      }
    }
    if (l->pfds[1].revents)
      accept_some(l);
  }
  return NULL;
}

static int listen_on(const char *addr, int *port) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  size_t hlen = colon ? (size_t)(colon - addr) : 0;
  if (!colon || hlen >= sizeof(host))
    return -1;
  memcpy(host, addr, hlen);
  host[hlen] = 0;
  if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
    memmove(host, host + 1, hlen - 2);
    host[hlen - 2] = 0;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *ai;
  if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0)
    return -1;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
    if (fd >= 0)
      close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *port = ntohs(ss.ss_family == AF_INET6
                    ? ((struct sockaddr_in6 *)&ss)->sin6_port
                    : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

static void login_free(login *l) {
  if (l->lfd >= 0)
    close(l->lfd);
  if (l->wake[0] >= 0)
    close(l->wake[0]);
  if (l->wake[1] >= 0)
    close(l->wake[1]);
  for (uint32_t i = 0; l->conns && i < l->conns_max; i++)
    if (l->conns[i].state != CONN_FREE)
      conn_close(&l->conns[i]);
  explicit_bzero(l->key, sizeof(l->key));
  free(l->conns);
  free(l->pfds);
  free(l);
}

int login_start(login **out, const login_config *cfg) {
  *out = NULL;
  if (!cfg->addr || !cfg->key || cfg->ntoken_addrs == 0 ||
      cfg->ntoken_addrs > KITE_TOKEN_ADDRS_MAX) {
    fprintf(stderr, "kited: login: needs an address, a key and 1 to %d "
                    "token addresses\n", KITE_TOKEN_ADDRS_MAX);
    return -1;
  }
  login *l = calloc(1, sizeof(*l));
  if (!l)
    return -1;
  l->lfd = l->wake[0] = l->wake[1] = -1;
  memcpy(l->key, cfg->key, sizeof(l->key));
  l->protocol_id = cfg->protocol_id;
  l->ttl_s = cfg->ttl_s ? cfg->ttl_s : LOGIN_TTL_S;
  l->conns_max = cfg->conns_max ? cfg->conns_max : LOGIN_CONNS_MAX;
  l->deadline_ms = cfg->deadline_ms ? cfg->deadline_ms : LOGIN_DEADLINE_MS;
  for (size_t i = 0; i < cfg->ntoken_addrs; i++) {
    if (strlen(cfg->token_addrs[i]) >= sizeof(l->addrs[i])) {
      fprintf(stderr, "kited: login: %s is too long\n", cfg->token_addrs[i]);
      login_free(l);
      return -1;
    }
    strcpy(l->addrs[i], cfg->token_addrs[i]);
    l->addr_ptrs[i] = l->addrs[i];
  }
  l->naddrs = cfg->ntoken_addrs;
  l->conns = calloc(l->conns_max, sizeof(*l->conns));
  l->pfds = calloc(l->conns_max + 2, sizeof(*l->pfds));
  if (!l->conns || !l->pfds || pipe2(l->wake, O_CLOEXEC) < 0) {
    fprintf(stderr, "kited: login: out of memory or descriptors\n");
    login_free(l);
    return -1;
  }
  for (uint32_t i = 0; i < l->conns_max; i++)
    l->conns[i].fd = -1;

  /* A test mint: a token address that does not parse fails here, once. */
  uint8_t probe[KITE_TOKEN_BYTES];
  kite_token_params p = {.protocol_id = l->protocol_id, .ttl_s = l->ttl_s,
                         .addrs = l->addr_ptrs, .naddrs = l->naddrs};
  int rc = kite_token_mint(probe, l->key, &p);
  explicit_bzero(probe, sizeof(probe));
  if (rc < 0) {
    fprintf(stderr, "kited: login: cannot mint tokens for these addresses "
                    "(%s): %s\n", l->addrs[0], kite_strerror(rc));
    login_free(l);
    return -1;
  }
  if ((l->lfd = listen_on(cfg->addr, &l->port)) < 0) {
    fprintf(stderr, "kited: login: cannot listen on %s: %s\n", cfg->addr,
            strerror(errno));
    login_free(l);
    return -1;
  }
  /* Signals stay with the application's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&l->thread, NULL, login_main, l);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    fprintf(stderr, "kited: login: cannot start its thread\n");
    login_free(l);
    return -1;
  }
  *out = l;
  return 0;
}

int login_port(const login *l) { return l->port; }

void login_stats_get(const login *l, login_stats *out) {
  login *m = (login *)l; /* atomic loads of a const object */
  for (int i = 0; i < LOGIN_OUTCOME_COUNT; i++)
    out->outcome[i] = atomic_load_explicit(&m->outcome[i], memory_order_relaxed);
  out->timeouts = atomic_load_explicit(&m->timeouts, memory_order_relaxed);
  out->evictions = atomic_load_explicit(&m->evictions, memory_order_relaxed);
  out->accept_backoffs =
      atomic_load_explicit(&m->accept_backoffs, memory_order_relaxed);
}

void login_stop(login *l) {
  if (!l)
    return;
  ssize_t w;
  do
    w = write(l->wake[1], "x", 1);
  while (w < 0 && errno == EINTR);
  pthread_join(l->thread, NULL);
  login_free(l);
}
