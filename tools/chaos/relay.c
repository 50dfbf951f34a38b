#include "relay.h"

#include "base/map.h"
#include "net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DGRAM_MAX 65536
#define FRONT ((uint32_t)-1) /* epoll tag of the client-facing socket */
#define SPOOF ((uint32_t)-2) /* and of the attacker's socket */

typedef struct flow {
  kite__addr client;
  int fd;             /* connected to the server; -1 when free */
  uint32_t gen;       /* bumped on free: queued datagrams check it */
  uint64_t last_ms;
  uint64_t key;
  uint32_t moves;     /* rebinds so far: picks the next source address */
} flow;

typedef struct pending {
  uint64_t at, seq;   /* leave time; arrival order breaks ties */
  uint32_t flow, gen;
  uint8_t up;         /* towards the server */
  uint32_t len;
  uint8_t *data;
} pending;

struct chaos_relay {
  chaos_config cfg;
  int front, epfd;
  int spoof;          /* the attacker's socket toward the server, or -1 */
  uint64_t next_spoof;
  kite__addr server;
  int port;
  flow *flows;
  kite__map by_addr;  /* address key -> flow index */
  pending *heap;      /* min-heap on (at, seq) */
  uint32_t nheap;
  uint64_t heap_bytes;
  uint64_t seq;
  chaos_dir up, down;
  chaos_stats st;
  uint8_t buf[DGRAM_MAX];
};

void chaos_config_init(chaos_config *c) {
  memset(c, 0, sizeof(*c));
  c->max_flows = 4096;
  c->max_queued = 65536;
  c->max_queued_bytes = 64u << 20;
  c->flow_idle_ms = 60000;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The address as a map key: exact for IPv4, hashed for IPv6 (and then
 * checked against the flow's address). */
static uint64_t addr_key(const kite__addr *a) {
  uint64_t h = 0xCBF29CE484222325ull;
  const uint8_t *p = (const uint8_t *)&a->sa;
  socklen_t n = kite__addr_len(a);
  for (socklen_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001B3ull;
  return h ^ (h >> 29);
}

static bool earlier(const pending *a, const pending *b) {
  return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void heap_push(chaos_relay *r, pending p) {
  uint32_t i = r->nheap++;
  while (i && earlier(&p, &r->heap[(i - 1) / 2])) {
    r->heap[i] = r->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  r->heap[i] = p;
}

static pending heap_pop(chaos_relay *r) {
  pending top = r->heap[0], last = r->heap[--r->nheap];
  uint32_t i = 0;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= r->nheap)
      break;
    if (c + 1 < r->nheap && earlier(&r->heap[c + 1], &r->heap[c]))
      c++;
    if (!earlier(&r->heap[c], &last))
      break;
    r->heap[i] = r->heap[c];
    i = c;
  }
  if (r->nheap)
    r->heap[i] = last;
  return top;
}

static void fail(char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s", what, strerror(errno));
}

/* Bursts (1,000 clients connecting at once) must meet the configured loss
 * only, not the kernel's default 208 KB buffers as well (best effort: the
 * kernel caps them at net.core.rmem_max / wmem_max). */
static void big_buffers(int fd) {
  int bytes = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

chaos_relay *chaos_relay_create(const chaos_config *c, char *err, size_t errlen) {
  chaos_relay *r = calloc(1, sizeof(*r));
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  r->cfg = *c;
  r->front = r->epfd = r->spoof = -1;
  kite__addr listen;
  if (kite__addr_parse(&listen, c->listen_addr) < 0 ||
      kite__addr_parse(&r->server, c->server_addr) < 0) {
    snprintf(err, errlen, "an address is not HOST:PORT");
    goto out;
  }
  r->flows = calloc(c->max_flows, sizeof(*r->flows));
  r->heap = calloc(c->max_queued, sizeof(*r->heap));
  if (!r->flows || !r->heap || kite__map_init(&r->by_addr, c->max_flows) < 0) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  for (uint32_t i = 0; i < c->max_flows; i++)
    r->flows[i].fd = -1;
  r->front = socket(listen.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (r->front < 0 || bind(r->front, &listen.sa, kite__addr_len(&listen)) < 0) {
    fail(err, errlen, "bind");
    goto out;
  }
  big_buffers(r->front);
  kite__addr bound;
  socklen_t blen = sizeof(bound);
  getsockname(r->front, &bound.sa, &blen);
  r->port = kite__addr_port(&bound);
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = FRONT};
  if (r->epfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->front, &ev) < 0) {
    fail(err, errlen, "epoll");
    goto out;
  }
  if (c->spoof_every_ms && c->spoof_addr) {
    kite__addr src;
    char text[80];
    snprintf(text, sizeof(text), "%s:0", c->spoof_addr);
    if (kite__addr_parse(&src, text) < 0 || src.sa.sa_family != r->server.sa.sa_family) {
      snprintf(err, errlen, "the spoof address is not an IP of the server's family");
      goto out;
    }
    r->spoof = socket(src.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = SPOOF};
    if (r->spoof < 0 || bind(r->spoof, &src.sa, kite__addr_len(&src)) < 0 ||
        connect(r->spoof, &r->server.sa, kite__addr_len(&r->server)) < 0 ||
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->spoof, &sev) < 0) {
      fail(err, errlen, "spoof socket");
      goto out;
    }
  }
  chaos_dir_init(&r->up, &c->up, c->seed, 1);
  chaos_dir_init(&r->down, &c->down, c->seed, 2);
  return r;
out:
  chaos_relay_destroy(r);
  return NULL;
}

int chaos_relay_port(const chaos_relay *r) { return r->port; }

static void flow_free(chaos_relay *r, uint32_t i) {
  flow *f = &r->flows[i];
  close(f->fd); /* leaves the epoll set with it */
  f->fd = -1;
  f->gen++;
  kite__map_del(&r->by_addr, f->key);
  r->st.flows--;
}

/* A socket toward the server for flow |i|, bound to the source address
 * its moves pick (rebind_addrs > 1) or to any, connected, in the epoll
 * set under |i|; -1 on failure. */
static int upstream(chaos_relay *r, uint32_t i) {
  int fd = socket(r->server.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  big_buffers(fd);
  if (r->cfg.rebind_addrs > 1 && r->server.sa.sa_family == AF_INET) {
    uint32_t host = 1 + r->flows[i].moves % r->cfg.rebind_addrs;
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7F000000u | host)};
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
      close(fd);
      return -1;
    }
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
  if (connect(fd, &r->server.sa, kite__addr_len(&r->server)) < 0 ||
      epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* NAT rebinding: every flow leaves from a new socket (a new source port,
 * and the next source address); the old one is closed, so what the
 * server still sends there is lost, as behind a NAT whose mapping went.
 * Datagrams queued upward leave from the new one. */
static void rebind_flows(chaos_relay *r) {
  for (uint32_t i = 0; i < r->cfg.max_flows; i++) {
    flow *f = &r->flows[i];
    if (f->fd < 0)
      continue;
    f->moves++;
    int fd = upstream(r, i);
    if (fd < 0) {
      f->moves--;
      r->st.rebind_failed++;
      continue;
    }
    close(f->fd);
    f->fd = fd;
    r->st.rebinds++;
  }
}

/* The flow of a client address, opened on first sight. */
static int flow_for(chaos_relay *r, const kite__addr *client, uint64_t now) {
  uint64_t key = addr_key(client);
  uint32_t i;
  if (kite__map_get(&r->by_addr, key, &i))
    return kite__addr_equal(&r->flows[i].client, client) ? (int)i : -1;
  for (i = 0; i < r->cfg.max_flows && r->flows[i].fd >= 0; i++)
    ;
  if (i == r->cfg.max_flows)
    return -1;
  flow *f = &r->flows[i];
  f->moves = 0;
  f->fd = upstream(r, i);
  if (f->fd < 0)
    return -1;
  if (kite__map_put(&r->by_addr, key, i) < 0) {
    close(f->fd);
    f->fd = -1;
    return -1;
  }
  f->client = *client;
  f->key = key;
  f->last_ms = now;
  r->st.flows++;
  r->st.flows_opened++;
  return (int)i;
}

static void queue(chaos_relay *r, uint32_t fi, bool up, const uint8_t *data,
                  uint32_t len, uint64_t now) {
  uint64_t at[2];
  int n = chaos_decide(up ? &r->up : &r->down, now, at);
  for (int k = 0; k < n; k++) {
    bool room = r->nheap < r->cfg.max_queued &&
                r->heap_bytes + len <= r->cfg.max_queued_bytes;
    uint8_t *copy = room ? malloc(len ? len : 1) : NULL;
    if (!copy) {
      r->st.queue_full++;
      continue;
    }
    memcpy(copy, data, len);
    r->heap_bytes += len;
    heap_push(r, (pending){at[k], r->seq++, fi, r->flows[fi].gen, up, len, copy});
  }
}

static void read_front(chaos_relay *r, uint64_t now) {
  for (;;) {
    kite__addr from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(r->front, r->buf, sizeof(r->buf), 0, &from.sa, &flen);
    if (n < 0)
      return;
    r->st.up_in++;
    int fi = flow_for(r, &from, now);
    if (fi < 0) {
      r->st.flows_refused++;
      continue;
    }
    r->flows[fi].last_ms = now;
    queue(r, (uint32_t)fi, true, r->buf, (uint32_t)n, now);
  }
}

/* What the server sent the attacker: counted, dropped. */
static void read_spoof(chaos_relay *r) {
  ssize_t n;
  while ((n = recv(r->spoof, r->buf, sizeof(r->buf), 0)) >= 0) {
    r->st.spoof_replies++;
    r->st.spoof_reply_bytes += (uint64_t)n;
  }
}

static void read_flow(chaos_relay *r, uint32_t fi, uint64_t now) {
  for (;;) {
    ssize_t n = recv(r->flows[fi].fd, r->buf, sizeof(r->buf), 0);
    if (n < 0)
      return; /* EAGAIN, or an ICMP error from a server not there yet */
    r->st.down_in++;
    r->flows[fi].last_ms = now;
    queue(r, fi, false, r->buf, (uint32_t)n, now);
  }
}

/* Sends what is due; a datagram of a flow gone meanwhile goes nowhere. */
static void send_due(chaos_relay *r, uint64_t now) {
  while (r->nheap && r->heap[0].at <= now) {
    pending p = heap_pop(r);
    r->heap_bytes -= p.len;
    flow *f = &r->flows[p.flow];
    if (f->fd >= 0 && f->gen == p.gen) {
      if (p.up) {
        if (r->spoof >= 0 && now >= r->next_spoof) { /* the copy goes first */
          r->next_spoof = now + r->cfg.spoof_every_ms;
          if (send(r->spoof, p.data, p.len, 0) >= 0) {
            r->st.spoofed++;
            r->st.spoofed_bytes += p.len;
          }
        }
        if (send(f->fd, p.data, p.len, 0) >= 0)
          r->st.up_out++;
      } else if (sendto(r->front, p.data, p.len, 0, &f->client.sa,
                        kite__addr_len(&f->client)) >= 0) {
        r->st.down_out++;
      }
    }
    free(p.data);
  }
}

static void expire_flows(chaos_relay *r, uint64_t now) {
  for (uint32_t i = 0; i < r->cfg.max_flows; i++)
    if (r->flows[i].fd >= 0 && now - r->flows[i].last_ms >= r->cfg.flow_idle_ms) {
      flow_free(r, i);
      r->st.flows_expired++;
    }
}

int chaos_relay_run(chaos_relay *r, atomic_bool *stop) {
  uint64_t next_expiry = now_ms() + 1000;
  uint64_t next_rebind = r->cfg.rebind_every_ms ? now_ms() + r->cfg.rebind_every_ms
                                                : UINT64_MAX;
  struct epoll_event ev[64];
  while (!atomic_load(stop)) {
    uint64_t now = now_ms();
    int timeout = 100;
    if (next_rebind <= now) {
      rebind_flows(r);
      next_rebind = now + r->cfg.rebind_every_ms;
    }
    if (next_rebind - now < (uint64_t)timeout)
      timeout = (int)(next_rebind - now);
    if (r->nheap)
      timeout = r->heap[0].at <= now ? 0
                : r->heap[0].at - now < (uint64_t)timeout ? (int)(r->heap[0].at - now)
                                                          : timeout;
    int n = epoll_wait(r->epfd, ev, 64, timeout);
    if (n < 0 && errno != EINTR)
      return -1;
    now = now_ms();
    for (int i = 0; i < n; i++) {
      if (ev[i].data.u32 == FRONT)
        read_front(r, now);
      else if (ev[i].data.u32 == SPOOF)
        read_spoof(r);
      else
        read_flow(r, ev[i].data.u32, now);
    }
    send_due(r, now);
    if (now >= next_expiry) {
      expire_flows(r, now);
      next_expiry = now + 1000;
    }
  }
  return 0;
}

void chaos_relay_stats(chaos_relay *r, chaos_stats *out) {
  *out = r->st;
  out->dropped = r->up.dropped + r->down.dropped;
  out->blacked_out = r->up.blacked_out + r->down.blacked_out;
  out->duplicated = r->up.duplicated + r->down.duplicated;
  out->reordered = r->up.reordered + r->down.reordered;
}

void chaos_relay_destroy(chaos_relay *r) {
  if (!r)
    return;
  while (r->heap && r->nheap)
    free(heap_pop(r).data);
  if (r->flows)
    for (uint32_t i = 0; i < r->cfg.max_flows; i++)
      if (r->flows[i].fd >= 0)
        close(r->flows[i].fd);
  if (r->front >= 0)
    close(r->front);
  if (r->spoof >= 0)
    close(r->spoof);
  if (r->epfd >= 0)
    close(r->epfd);
  kite__map_free(&r->by_addr);
  free(r->flows);
  free(r->heap);
  free(r);
}
