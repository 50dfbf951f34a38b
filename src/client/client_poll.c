/*
 * The poll loop: one wait on the client's epoll (or none, when asked not
 * to wait and no TCP connection is open), then datagrams, TCP readiness
 * and timers, each handing work to sessions, and safe points where the
 * touched sessions are serviced and on_disconnects run
 * (client_internal.h tells the flow).
 */
#include "client/client_internal.h"

#include "kite/error.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

/* Services every touched session (client_internal.h). Callbacks may touch
 * more, including ones already serviced: the loop runs until none is left.
 * A session stays marked while it is serviced, so what its own callbacks
 * send rides in the flush that ends its service, not in a second pass. */
void kite__cli_service_touched(kite_client *c) {
  kite_conn *conn;
  while ((conn = c->touched)) {
    c->touched = conn->touched_next;
    if (conn->state == KITE__CONN_OPEN && conn->tp->flush)
      conn->tp->flush(conn); /* TCP has none: it wrote at once */
    conn->touched = false;
    if (conn->state != KITE__CONN_CLOSED)
      kite__cli_conn_schedule(conn);
  }
}

/* Runs the on_disconnect of every closed session, then frees it. The list
 * is taken whole first: sessions closed by these callbacks wait for the
 * next round, after anything those callbacks touched has been serviced,
 * so a session is never freed while still on the touched list. */
static void run_disconnects(kite_client *c) {
  kite_conn *list = c->closing;
  c->closing = c->closing_tail = NULL;
  while (list) {
    kite_conn *conn = list;
    list = conn->closed_next;
    /* Its slot first: a callback that reconnects at max_sessions may. */
    kite__cli_conn_detach(conn);
    if (c->cfg.on_disconnect)
      c->cfg.on_disconnect(conn, conn->reason, c->cfg.user);
    kite__cli_conn_free(conn);
  }
}

/* Deferred work until none is left, then what was queued leaves. */
static void safe_point(kite_client *c) {
  for (;;) {
    kite__cli_service_touched(c);
    if (!c->closing)
      break;
    run_disconnects(c);
  }
  kite__udp_tx_flush(c->tx);
}

static void on_timer(kite__timer *t, void *user) {
  (void)user;
  kite_conn *conn = (kite_conn *)((char *)t - offsetof(kite_conn, timer));
  kite__cli_conn_on_timer(conn);
}

static bool work_waiting(const kite_client *c) {
  return c->touched || c->closing || c->tx->n > 0;
}

int kite_client_poll(kite_client *c, int timeout_ms) {
  if (c->in_poll)
    return KITE_ESTATE;
  c->in_poll = true;
  c->now = c->clock(c->clock_user);
  /* What calls made outside poll queued leaves before we sleep. */
  safe_point(c);
  int rc = 0;
  int wait = timeout_ms == 0
                 ? 0
                 : kite__wheel_timeout_ms(&c->wheel, c->now, timeout_ms);
  if (wait < 0)
    wait = timeout_ms; /* no timer: the caller's bound, or forever */
  wait = kite__cli_linger_timeout_ms(c, c->now, wait);
  /* Without a wait the UDP socket is read whatever epoll would say: a
   * recvmmsg that finds nothing costs what the epoll_wait would, and a
   * client with no TCP connection (the benchmarked KCP path) then makes
   * no epoll call at all. */
  bool udp_ready = wait == 0;
  int n = 0;
  if (wait != 0 || c->ntcp > 0) {
    n = epoll_wait(c->ep, c->events, KITE__CLIENT_EVENTS, wait);
    if (n < 0) {
      if (errno != EINTR) {
        kite__logf(&c->log, KITE_LOG_ERROR, "epoll_wait() failed: %s",
                   strerror(errno));
        rc = KITE_ESYS;
      }
      n = 0;
    }
    for (int i = 0; i < n; i++)
      if (!c->events[i].data.ptr)
        udp_ready = true;
  }
  c->now = c->clock(c->clock_user);
  if (udp_ready && rc == 0)
    rc = kite__cli_udp_receive(c);
  /* Sessions are freed only at safe points, so every data.ptr here is
   * still allocated; one closed since the wait is skipped by its state. */
  for (int i = 0; i < n; i++) {
    kite_conn *conn = c->events[i].data.ptr;
    if (conn && kite__cli_linger_owns(c, conn))
      kite__cli_linger_on_event(c, conn);
    else if (conn)
      conn->tp->on_event(conn, c->events[i].events);
  }
  c->now = c->clock(c->clock_user);
  kite__wheel_advance(&c->wheel, c->now, on_timer, c);
  kite__cli_linger_expire(c);
  safe_point(c);
  c->in_poll = false;
  return rc;
}

int kite_client_timeout_ms(const kite_client *c) {
  if (work_waiting(c))
    return 0;
  uint32_t now = c->clock(c->clock_user);
  return kite__cli_linger_timeout_ms(
      c, now, kite__wheel_timeout_ms(&c->wheel, now, -1));
}
