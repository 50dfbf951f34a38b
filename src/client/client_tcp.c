/*
 * The TCP transport (PROTOCOL.md section 5): a connection of its own,
 *
 *   connect()            state TCP_CONNECT, until the socket is writable
 *   OPEN           ->    state TCP_OPENING
 *                  <-    OPENED(idle_timeout_ms, max_frame): open, as ACCEPT
 *                  <-    REJECT(zero nonce, reason), and the server closes
 *
 * then frames both ways on the stream. One deadline covers both waits,
 * retry_ms * (retries + 1): as long as a KCP handshake takes to give up.
 *
 * Frames out are written at once through kite__tcp_out (one sendmsg for
 * header and body); only what the kernel refuses is copied, and waits for
 * EPOLLOUT, bounded by tcp_send_max. Frames in are read on EPOLLIN into
 * the client's scratch buffer and cut by the session's frame reader, as
 * on KCP, so a frame whose bytes came in one read is delivered in place.
 */
#include "client/client_internal.h"

#include "base/time.h"
#include "kite/error.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads per readiness report: a server that streams fast cannot starve the
 * other sessions, the UDP socket or the timers (level-triggered epoll
 * reports the rest at the next poll). */
#define KITE__TCP_READS 4

/* Reads of 4 KiB that discard unread bytes at close: see release(). */
#define KITE__TCP_DRAIN_READS 16

static void log_err(kite_conn *conn, const char *what, int err) {
  kite__logf(&conn->cli->log, KITE_LOG_DEBUG, "tcp %s: %s failed: %s",
             conn->state == KITE__CONN_OPEN ? "session" : "connect", what,
             strerror(err));
}

/* The connection broke: |err| is an errno, or 0 for the server's end of
 * stream. Before OPENED no session existed to reset; after it, an orderly
 * end is the server's close, with the reason of its close notice (section
 * 5), or normal without one. A reset after the notice is the server's
 * close too: it said so, and a peer that closes with our bytes unread
 * resets. */
static void broken(kite_conn *conn, const char *what, int err) {
  kite_client *cli = conn->cli;
  if (err)
    log_err(conn, what, err);
  if (conn->state == KITE__CONN_CLOSED)
    return;
  if (conn->state != KITE__CONN_OPEN) {
    cli->stats.tcp_connect_failed++;
    if (conn->v2)
      kite__cli_v2_attempt_failed(conn, KITE_CONNECT_FAILED);
    else
      kite__cli_conn_close(conn, KITE_CONNECT_FAILED, -1);
  } else if (conn->notice_heard) {
    cli->stats.closed_by_server++;
    kite__cli_conn_close(conn, conn->notice_reason, -1);
  } else if (!err) {
    /* Version 2: an end of stream without a CLOSE frame is reason 5, a
     * FIN being unauthenticated (PROTOCOL-v2.md section 8). */
    cli->stats.closed_by_server++;
    kite__cli_conn_close(conn, conn->v2 ? KITE_CLOSE_DEAD_LINK
                                        : KITE_CLOSE_NORMAL, -1);
  } else {
    cli->stats.tcp_resets++;
    kite__cli_conn_close(conn, KITE_CONN_RESET, -1);
  }
}

/* EPOLLOUT while bytes wait (or while connecting), EPOLLIN once connected. */
static void rewatch(kite_conn *conn) {
  uint32_t ev = conn->state == KITE__CONN_TCP_CONNECT ? EPOLLOUT : EPOLLIN;
  if (kite__tcp_out_pending(&conn->out))
    ev |= EPOLLOUT;
  if (kite__cli_watch(conn, ev) < 0)
    broken(conn, "epoll_ctl()", errno);
}

void kite__cli_tcp_start(kite_conn *conn) {
  kite_client *cli = conn->cli;
  kite__tcp_out_init(&conn->out, cli->cfg.tcp_send_max);
  conn->state = KITE__CONN_TCP_CONNECT;
  conn->retry_due_ms = cli->now + cli->cfg.retry_ms * (cli->cfg.retries + 1);
  kite__cli_conn_schedule(conn);
  int fd = socket(conn->server.sa.sa_family,
                  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    broken(conn, "socket()", errno);
    return;
  }
  conn->fd = fd;
  cli->ntcp++;
  int on = 1; /* frames are small and latency matters: no Nagle */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  if (connect(fd, &conn->server.sa, kite__addr_len(&conn->server)) < 0 &&
      errno != EINPROGRESS) {
    broken(conn, "connect()", errno);
    return;
  }
  rewatch(conn);
}

void kite__cli_tcp_broken(kite_conn *conn, const char *what, int err) {
  broken(conn, what, err);
}

static void tcp_on_timer(kite_conn *conn) {
  kite_client *cli = conn->cli;
  if (conn->v2 && kite__cli_v2_expired(conn))
    return;
  if (!kite__ms_reached(cli->now, conn->retry_due_ms)) {
    kite__cli_conn_schedule(conn);
    return;
  }
  kite__logf(&cli->log, KITE_LOG_DEBUG, "tcp connect: no %s in time",
             conn->state == KITE__CONN_TCP_CONNECT ? "connection" : "OPENED");
  cli->stats.connect_timeouts++;
  if (conn->v2)
    kite__cli_v2_attempt_failed(conn, KITE_CONNECT_TIMEOUT);
  else
    kite__cli_conn_close(conn, KITE_CONNECT_TIMEOUT, -1);
}

static int tcp_send(kite_conn *conn, const struct iovec *iov, int n) {
  if (conn->v2)
    return kite__cli_v2tcp_send(conn, iov, n);
  return kite__cli_tcp_send_raw(conn, iov, n);
}

int kite__cli_tcp_send_raw(kite_conn *conn, const struct iovec *iov, int n) {
  kite_client *cli = conn->cli;
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  if (total > conn->out.max)
    return KITE_EMSGSIZE; /* no drained buffer would ever take it */
  uint64_t before = conn->out.bytes_out;
  bool pollout;
  int rc = kite__tcp_out_send(&conn->out, conn->fd, iov, n, cli->now,
                              &pollout);
  int err = errno;
  cli->stats.tcp_bytes_out += conn->out.bytes_out - before;
  switch (rc) {
  case 0:
    if (pollout)
      rewatch(conn);
    return conn->state == KITE__CONN_CLOSED ? KITE_ESTATE : 0;
  case KITE_EFULL:
    return KITE_EFULL;
  case KITE_ENOMEM:
    /* Part of the frame may be on the wire: the stream is cut, and a
     * close notice would be read as the rest of that frame. */
    conn->stream_cut = true;
    kite__cli_conn_close(conn, KITE_CLIENT_NOMEM, KITE__CLOSE_NORMAL);
    return KITE_ENOMEM;
  default:
    broken(conn, "sendmsg()", err);
    return KITE_ESTATE;
  }
}

/* The socket became writable (or failed) while connecting. */
static void on_connected(kite_conn *conn, uint32_t events) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    err = errno;
  if (err) {
    broken(conn, "connect()", err);
    return;
  }
  if (!(events & EPOLLOUT))
    return; /* not yet */
  conn->state = KITE__CONN_TCP_OPENING;
  if (conn->v2) {
    kite__cli_v2tcp_send_open(conn);
    if (conn->state == KITE__CONN_TCP_OPENING)
      rewatch(conn); /* else it broke, and moved on or closed */
    return;
  }
  uint8_t open[KITE__CTRL_HDR];
  kite__ctrl k = {.type = KITE__CTRL_OPEN};
  int n = kite__ctrl_encode(open, sizeof(open), &k);
  struct iovec v = {open, (size_t)n};
  if (tcp_send(conn, &v, 1) == 0)
    rewatch(conn);
}

/* The size of the reply whose header is in conn->reply: OPENED's or
 * REJECT's, or just the header when that alone says it is neither (or
 * a REJECT of another version, whose length version 1 cannot know). */
static size_t reply_size(const kite_conn *conn) {
  const uint8_t *h = conn->reply;
  if (conn->v2)
    return kite__cli_v2tcp_reply_size(conn);
  if (!kite__ctrl_is_control(h, KITE__CTRL_HDR) || h[5] != KITE__PROTO_VERSION)
    return KITE__CTRL_HDR;
  if (h[4] == KITE__CTRL_OPENED || h[4] == KITE__CTRL_REJECT)
    return kite__ctrl_size(h[4]);
  return KITE__CTRL_HDR;
}

static void on_reply(kite_conn *conn) {
  kite_client *cli = conn->cli;
  if (conn->v2) {
    kite__cli_v2tcp_on_reply(conn);
    return;
  }
  kite__ctrl k;
  int rc = kite__ctrl_decode(conn->reply, conn->reply_have, &k);
  if (rc == KITE__CTRL_EVERSION && k.type == KITE__CTRL_REJECT) {
    /* A server of another version says so in its own header (section 2). */
    kite__cli_hs_on_reject(conn, KITE__REJECT_VERSION);
  } else if (rc == 0 && k.type == KITE__CTRL_REJECT) {
    kite__cli_hs_on_reject(conn, k.reason); /* the nonce (zero) is not judged */
  } else if (rc == 0 && k.type == KITE__CTRL_OPENED) {
    kite__cli_frames_opened(conn, k.idle_timeout_ms, k.max_frame);
    /* The timer still holds the OPENED deadline: the safe point re-arms
     * it for pings and idleness (a KCP session's first ping touches it). */
    kite__cli_touch(conn);
  } else {
    /* Not a kite server, or a broken one: a stream cannot be resynced. */
    cli->stats.drop_control++;
    kite__logf(&cli->log, KITE_LOG_DEBUG,
               "tcp connect: reply is neither OPENED nor REJECT");
    kite__cli_conn_close(conn, KITE_CLOSE_PROTOCOL, -1);
  }
}

/* Gathers OPENED or REJECT from the bytes at |p|, which may hold it in
 * part, whole, or followed by the first frames. Returns the bytes used. */
static size_t take_reply(kite_conn *conn, const uint8_t *p, size_t n) {
  size_t used = 0;
  for (;;) {
    size_t need = conn->reply_have < KITE__CTRL_HDR ? KITE__CTRL_HDR
                                                    : reply_size(conn);
    size_t take = need - conn->reply_have;
    if (take > n - used)
      take = n - used;
    memcpy(conn->reply + conn->reply_have, p + used, take);
    conn->reply_have += (uint8_t)take;
    used += take;
    if (conn->reply_have < need)
      return used;
    if (need == reply_size(conn))
      break;
  }
  on_reply(conn);
  return used;
}

static void on_bytes(kite_conn *conn, const uint8_t *p, size_t n) {
  if (conn->state == KITE__CONN_TCP_OPENING) {
    size_t used = take_reply(conn, p, n);
    if (conn->state != KITE__CONN_OPEN)
      return; /* the reply is incomplete, or closed the session */
    p += used;
    n -= used;
  }
  if (!n || conn->state != KITE__CONN_OPEN)
    return;
  /* A short count means the session closed: the rest is moot. */
  if (conn->v2)
    kite__cli_v2tcp_feed(conn, p, n);
  else
    kite__cli_frames_feed(conn, p, n);
}

static void read_some(kite_conn *conn) {
  kite_client *cli = conn->cli;
  for (int i = 0; i < KITE__TCP_READS; i++) {
    ssize_t r = recv(conn->fd, cli->scratch, cli->scratch_cap, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        broken(conn, "recv()", errno);
      return;
    }
    if (r == 0) {
      broken(conn, "recv()", 0);
      return;
    }
    cli->stats.tcp_bytes_in += (uint64_t)r;
    conn->last_rx_ms = cli->now; /* any byte, as any valid KCP segment */
    on_bytes(conn, cli->scratch, (size_t)r);
    if (conn->state == KITE__CONN_CLOSED || (size_t)r < cli->scratch_cap)
      return; /* a short read emptied the socket: spare the EAGAIN */
    if (conn->state == KITE__CONN_TCP_CONNECT)
      return; /* v2: the reply moved on to the next address's socket */
  }
}

static void tcp_on_event(kite_conn *conn, uint32_t events) {
  kite_client *cli = conn->cli;
  if (conn->fd < 0)
    return; /* closed since the wait reported it */
  if (conn->state == KITE__CONN_TCP_CONNECT) {
    /* Nothing to read before OPEN has gone: the next poll reads. */
    on_connected(conn, events);
    return;
  }
  if ((events & EPOLLOUT) && kite__tcp_out_pending(&conn->out)) {
    uint64_t before = conn->out.bytes_out;
    bool pollout;
    int rc = kite__tcp_out_flush(&conn->out, conn->fd, cli->now, &pollout);
    int err = errno;
    cli->stats.tcp_bytes_out += conn->out.bytes_out - before;
    if (rc < 0) {
      broken(conn, "sendmsg()", err);
      return;
    }
    if (!pollout)
      rewatch(conn);
  }
  /* Errors and hang-ups surface through recv(), after any bytes before
   * them. */
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
    read_some(conn);
}

/* Queues the close notice with |reason| ahead of the FIN of a close made
 * on purpose; best effort: not when a frame went out in part (it would
 * read as the rest of that frame), nor when tcp_send_max is full (then
 * the FIN alone says it, as reason 0). */
static void send_notice(kite_conn *conn, uint8_t reason) {
  kite_client *cli = conn->cli;
  if (conn->fd < 0 || conn->stream_cut)
    return;
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, KITE__MSG_CLOSE_NOTICE, 0, &reason, 1,
                     cli->cfg.crc);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {&reason, 1}};
  uint64_t before = conn->out.bytes_out;
  bool pollout;
  /* Whatever it returns, release() follows: a broken socket is found
   * there, and the session is closing already. */
  (void)kite__tcp_out_send(&conn->out, conn->fd, iov, 2, cli->now, &pollout);
  cli->stats.tcp_bytes_out += conn->out.bytes_out - before;
}

/* Writes what is queued (best effort, no waiting), sends FIN, then closes
 * the descriptor, or hands it to the lingering close when |linger|, and
 * frees the output buffer. Idempotent. */
static void release(kite_conn *conn, bool linger) {
  kite_client *cli = conn->cli;
  if (conn->fd < 0) {
    kite__tcp_out_free(&conn->out);
    return;
  }
  if (kite__tcp_out_pending(&conn->out)) {
    uint64_t before = conn->out.bytes_out;
    bool pollout;
    kite__tcp_out_flush(&conn->out, conn->fd, cli->now, &pollout);
    cli->stats.tcp_bytes_out += conn->out.bytes_out - before;
  }
  /* Removed by hand, not by close(): a forked child may share the socket,
   * and epoll would go on reporting it with a freed session. */
  kite__cli_watch(conn, 0);
  conn->watching = 0;
  shutdown(conn->fd, SHUT_WR);
  int fd = conn->fd;
  conn->fd = -1;
  kite__tcp_out_free(&conn->out);
  /* Kept until the server's end of stream: it counts in ntcp until then
   * (client_linger.c closes it). */
  if (linger && kite__cli_linger_start(cli, fd))
    return;
  /* Closing with unread bytes makes Linux send RST, which also throws away
   * what we queued just now (a last frame, our FIN): read and drop what
   * has arrived. Into the stack, not scratch: a callback up the stack may
   * be reading a frame's body there. */
  uint8_t sink[4096];
  for (int i = 0; i < KITE__TCP_DRAIN_READS; i++)
    if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
      break;
  close(fd);
  cli->ntcp--;
}

void kite__cli_tcp_release(kite_conn *conn) { release(conn, false); }

/* A close on purpose sends its notice and lingers; one after the server's
 * end of stream, a reset or a failed connect closes at once. */
static void tcp_close(kite_conn *conn, bool was_open, int wire_reason) {
  bool on_purpose = was_open && wire_reason >= 0;
  if (on_purpose) {
    if (conn->v2)
      kite__cli_v2tcp_send_close(conn, (uint8_t)wire_reason);
    else
      send_notice(conn, (uint8_t)wire_reason);
  }
  release(conn, on_purpose);
  if (on_purpose)
    conn->cli->stats.closed_by_client++;
}

static void tcp_stats(const kite_conn *conn, kite_conn_stats *out) {
  struct tcp_info ti;
  socklen_t len = sizeof(ti);
  if (conn->fd < 0 ||
      getsockopt(conn->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
    return;
  out->srtt_ms = ti.tcpi_rtt / 1000;
  out->rto_ms = ti.tcpi_rto / 1000;
  out->retransmits = ti.tcpi_total_retrans;
}

const kite__cli_transport kite__cli_tcp_transport = {
    .name = "tcp",
    .on_event = tcp_on_event,
    .on_timer = tcp_on_timer,
    .send = tcp_send,
    .close = tcp_close,
    .free = kite__cli_tcp_release,
    .stats = tcp_stats,
    .close_notice = true,
};
