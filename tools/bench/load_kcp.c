/*
 * Bare KCP for servers that are not kite (bench/compare's kcp-go echo):
 * kite's KCP engine with its default config, no handshake and no framing:
 * each frame is sent as one KCP message, and echoes are read back as a
 * byte stream cut every --size bytes, since kcp-go's Write cuts anything
 * longer than one segment (1,376 bytes) into messages of its own. A kcp-go
 * listener tells sessions apart by the
 * sender's address, so each session has a socket of its own, connected to
 * the server; all sockets share one epoll set and one segment pool.
 *
 * Each session's engine is flushed right after the driver's sends and
 * after input (acks go out at once), and otherwise when kite__kcp_next_due()
 * says, through a timer wheel: the way kite's client drives it.
 */
#include "bench.h"
#include "driver.h"

#include "base/clock.h"
#include "base/wheel.h"
#include "kcp/kcp.h"
#include "net/addr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define EVENTS_MAX 256
#define MSG_MAX 65536

typedef struct kcp_io kcp_io;

typedef struct kcp_session {
  kcp_io *io;
  kite__kcp *kcp;
  kite__timer timer;
  int fd;
  uint32_t id;
  bool dirty; /* on the dirty list: flush before waiting */
} kcp_session;

struct kcp_io {
  driver *d;
  kcp_session *s;
  uint32_t *dirty;
  uint32_t ndirty;
  int ep;
  kite__kcp_pool *pool;
  kite__wheel wheel;
  uint8_t *buf; /* a datagram in, then a message out */
};

static void on_output(kite__kcp *kcp, const uint8_t *buf, size_t len, void *user) {
  (void)kcp;
  kcp_session *s = user;
  /* A full socket buffer drops the datagram: KCP resends it. */
  (void)send(s->fd, buf, len, MSG_DONTWAIT);
}

static void on_dead(kite__kcp *kcp, void *user) {
  (void)kcp;
  kcp_session *s = user;
  driver *d = s->io->d;
  if (!d->sess[s->id].ready)
    return;
  d->sess[s->id].ready = false;
  d->res->failed++;
  if (!d->cfg->quiet)
    fprintf(stderr, "kite-bench: session %u: the KCP link died\n", s->id);
}

static const kite__kcp_ops kcp_ops = {on_output, on_dead};

static void mark_dirty(kcp_io *io, kcp_session *s) {
  if (!s->dirty) {
    s->dirty = true;
    io->dirty[io->ndirty++] = s->id;
  }
}

static void flush(kcp_io *io, kcp_session *s, uint32_t now_ms) {
  kite__kcp_flush(s->kcp, now_ms);
  uint32_t due;
  if (kite__kcp_next_due(s->kcp, now_ms, &due))
    kite__wheel_add(&io->wheel, &s->timer, due);
  else
    kite__wheel_del(&io->wheel, &s->timer);
}

static void flush_dirty(kcp_io *io, uint32_t now_ms) {
  for (uint32_t i = 0; i < io->ndirty; i++) {
    kcp_session *s = &io->s[io->dirty[i]];
    s->dirty = false;
    flush(io, s, now_ms);
  }
  io->ndirty = 0;
}

static void on_due(kite__timer *t, void *user) {
  kcp_io *io = user;
  kcp_session *s = (kcp_session *)((char *)t - offsetof(kcp_session, timer));
  mark_dirty(io, s);
}

static int kcp_send(void *transport, uint32_t session, const uint8_t *body,
                    uint32_t len) {
  kcp_io *io = transport;
  kcp_session *s = &io->s[session];
  if (kite__kcp_send(s->kcp, body, len) < 0)
    return -1;
  mark_dirty(io, s);
  return 0;
}

static void read_session(kcp_io *io, kcp_session *s, uint64_t now_us) {
  uint32_t now_ms = (uint32_t)(now_us / 1000);
  ssize_t n;
  while ((n = recv(s->fd, io->buf, MSG_MAX, 0)) > 0)
    kite__kcp_input(s->kcp, io->buf, (size_t)n, now_ms);
  uint32_t size = io->d->cfg->size;
  while (kite__kcp_readable(s->kcp) >= size) {
    const uint8_t *frame = kite__kcp_peek_contig(s->kcp, size);
    if (!frame) {
      kite__kcp_peek(s->kcp, io->buf, size);
      frame = io->buf;
    }
    driver_echo(io->d, s->id, frame, size, now_us);
    kite__kcp_consume(s->kcp, size);
  }
  mark_dirty(io, s); /* acks */
}

/* Sends what the driver queued, waits, reads, and flushes what is due. */
static void kcp_wait(void *transport, int timeout_ms) {
  kcp_io *io = transport;
  uint32_t now_ms = kite__now_ms();
  flush_dirty(io, now_ms);
  int due = kite__wheel_timeout_ms(&io->wheel, now_ms, timeout_ms);
  struct epoll_event ev[EVENTS_MAX];
  int n = epoll_wait(io->ep, ev, EVENTS_MAX, due < 0 ? timeout_ms : due);
  uint64_t now = kite__now_us();
  for (int i = 0; i < n; i++)
    read_session(io, &io->s[ev[i].data.u32], now);
  kite__wheel_advance(&io->wheel, (uint32_t)(now / 1000), on_due, io);
  flush_dirty(io, (uint32_t)(now / 1000));
}

static int open_session(kcp_io *io, kcp_session *s, const kite__addr *server,
                        const kite__kcp_config *kc) {
  s->fd = socket(server->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0 || connect(s->fd, &server->sa, kite__addr_len(server)) < 0) {
    fprintf(stderr, "kite-bench: session %u: socket: %s\n", s->id, strerror(errno));
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = s->id};
  if (epoll_ctl(io->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0 ||
      kite__kcp_create(&s->kcp, s->id + 1, kc, io->pool, &kcp_ops, s) < 0) {
    fprintf(stderr, "kite-bench: session %u: setup failed\n", s->id);
    return -1;
  }
  kite__timer_init(&s->timer);
  return 0;
}

int bench_run_kcp(const bench_config *cfg, bench_result *res) {
  kcp_io io = {0};
  kite__addr server;
  if (kite__addr_parse(&server, cfg->server) < 0) {
    fprintf(stderr, "kite-bench: bad address %s\n", cfg->server);
    return -1;
  }
  driver d;
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  pc.max_segments = cfg->sessions * 2u * 128u; /* both windows full, everywhere */
  pc.reserve = pc.max_segments / 4;
  if (driver_init(&d, cfg, res) < 0 || !(io.pool = kite__kcp_pool_create(&pc)))
    return -1;
  io.d = &d;
  io.s = calloc(cfg->sessions, sizeof(*io.s));
  io.dirty = calloc(cfg->sessions, sizeof(*io.dirty));
  io.buf = malloc(MSG_MAX);
  io.ep = epoll_create1(EPOLL_CLOEXEC);
  if (!io.s || !io.dirty || !io.buf || io.ep < 0)
    return -1;
  kite__wheel_init(&io.wheel, kite__now_ms());
  kite__kcp_config kc;
  kite__kcp_config_default(&kc);
  uint64_t t0 = kite__now_us();
  for (uint32_t i = 0; i < cfg->sessions; i++) {
    io.s[i].id = i;
    io.s[i].io = &io;
    if (open_session(&io, &io.s[i], &server, &kc) < 0)
      return -1;
    d.sess[i].ready = true; /* bare KCP has no handshake */
  }
  res->connected = cfg->sessions;
  res->connect_s = (double)(kite__now_us() - t0) / 1e6;
  d.send = kcp_send;
  d.transport = &io;
  driver_run(&d, kcp_wait);
  for (uint32_t i = 0; i < cfg->sessions; i++) {
    kite__kcp_destroy(io.s[i].kcp);
    close(io.s[i].fd);
  }
  kite__kcp_pool_destroy(io.pool);
  close(io.ep);
  driver_free(&d);
  free(io.s);
  free(io.dirty);
  free(io.buf);
  return 0;
}
