/*
 * A shard: one thread, one UDP socket in the SO_REUSEPORT group (and a TCP
 * listener in the port's group when TCP is on), one epoll loop, and the
 * sessions it owns. Each iteration reads datagrams in batches
 * (a budget per wakeup, so timers and the inbox are never starved), runs
 * the commands other threads posted, fires due timers, then flushes every
 * session touched in the iteration (acks and replies together) and sends
 * the batch with sendmmsg. Under dense traffic it then sleeps out the
 * rest of a short window (wake_coalesce_us, server/wake.h) before it waits
 * again, so that one wake-up serves many datagrams.
 */
#include "server/server_internal.h"
#include "server/session_v2.h"
#include "server/wake.h"

#include "base/clock.h"
#include "base/time.h"
#include "kcp/kcp_codec.h"
#include "proto/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define RX_BATCHES_PER_WAKEUP 8 /* 8 x 64 datagrams, then other work */
#define INBOX_PER_WAKEUP 4096   /* commands, likewise */
#define EVENTS_PER_WAIT 64

static _Thread_local kite__shard *current_shard;

kite__shard *kite__shard_current(void) { return current_shard; }

int kite__shard_init(kite__shard *sh, kite_server *srv, uint32_t index) {
  const kite_server_config *cfg = &srv->cfg;
  sh->srv = srv;
  sh->index = index;
  sh->fd = sh->epfd = sh->evfd = -1;
  sh->tcp_ls.fd = sh->tcp_ls.spare = -1;
  for (int i = 0; i < KITE__ST_COUNT; i++)
    atomic_init(&sh->stats[i], 0);
  atomic_init(&sh->wake_pending, 0);

  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  pc.mtu = cfg->mtu;
  pc.wnd_max = cfg->snd_wnd > cfg->rcv_wnd ? cfg->snd_wnd : cfg->rcv_wnd;
  if (pc.wnd_max < 256)
    pc.wnd_max = 256; /* a client may announce up to this */
  pc.max_segments = cfg->shard_segments_max;
  pc.reserve = pc.max_segments / 4;
  pc.keep_segments = cfg->shard_segments_keep;
  pc.keep_rings = cfg->shard_rings_keep;
  sh->pool = kite__kcp_pool_create(&pc);
  kite__kcp_config_default(&sh->kcp_cfg);
  sh->kcp_cfg.snd_wnd = cfg->snd_wnd;
  sh->kcp_cfg.rcv_wnd = cfg->rcv_wnd;
  sh->kcp_cfg.interval_ms = cfg->interval_ms;
  sh->kcp_cfg.dead_link_ms = cfg->dead_link_ms;
  sh->kcp_cfg.snd_queue_max = cfg->send_queue_max;

  uint32_t per_shard = srv->slots_per_shard;
  kite__srclimit_limits lim = {
      .per_addr = cfg->max_sessions_per_addr,
      .per_prefix = cfg->max_sessions_per_prefix,
      .halfopen_per_addr = cfg->max_halfopen_per_addr,
      .halfopen_per_prefix = cfg->max_halfopen_per_prefix,
  };
  sh->nslots = per_shard;
  sh->slots = calloc(per_shard, sizeof(*sh->slots));
  sh->rx = malloc(sizeof(*sh->rx));
  if (sh->rx)
    kite__udp_rx_init(sh->rx);
  sh->tx = malloc(sizeof(*sh->tx));
  sh->scratch = malloc(KITE__FRAME_HDR + (size_t)cfg->max_frame);
  if (srv->tcp_addr)
    sh->tcp_rx = malloc(KITE__TCP_RX_BYTES);
  bool v2tcp = srv->tcp_addr && (cfg->versions & KITE_VERSION_2);
  if (v2tcp)
    sh->seal = malloc(kite__tv2_shard_bytes(cfg->max_frame));
  if (!sh->pool || !sh->slots || !sh->rx || !sh->tx || !sh->scratch ||
      (srv->tcp_addr && !sh->tcp_rx) || (v2tcp && !sh->seal) ||
      kite__map_init(&sh->hs, per_shard) < 0 ||
      kite__map_init(&sh->convs, per_shard) < 0 ||
      kite__srclimit_init(&sh->srcs, &lim, per_shard, srv->route_key) < 0 ||
      kite__closed_init(&sh->closed, cfg->closed_linger_max,
                        cfg->closed_linger_ms) < 0 ||
      kite__mpsc_init(&sh->inbox, cfg->inbox_max) < 0 ||
      kite__mpsc_init(&sh->notices, per_shard + 16) < 0 ||
      ((cfg->versions & KITE_VERSION_2) &&
       kite__upool_init(&sh->upool,
                        cfg->unreliable_queue_max ? cfg->unreliable_queue_max
                                                  : 1024,
                        kite__lane_max(srv)) < 0))
    return KITE_ENOMEM;
  for (uint32_t i = per_shard; i-- > 0;) {
    kite__session *s = &sh->slots[i];
    s->shard = sh;
    s->slot = i;
    atomic_init(&s->generation, 1);
    atomic_init(&s->pending, 0);
    atomic_init(&s->queued, 0);
    atomic_flag_clear(&s->pub_lock);
    s->app = kite__logic_slot(srv->logic, index, i, s);
    kite__timer_init(&s->timer);
    s->free_next = sh->free;
    sh->free = s;
  }
  atomic_store_explicit(&sh->stats[KITE__ST_pool_bytes],
                        kite__kcp_pool_bytes(sh->pool), memory_order_relaxed);
  sh->now = kite__now_ms();
  kite__wheel_init(&sh->wheel, sh->now);
  kite__wheel_init(&sh->linger_wheel, sh->now);
  return kite__cookie_jar_init(&sh->jar, srv->master, cfg->cookie_lifetime_s);
}

void kite__shard_free(kite__shard *sh) {
  if (!sh->srv)
    return; /* never initialised: the server's create failed before it */
  if (sh->slots) {
    for (uint32_t i = 0; i < sh->nslots; i++) {
      kite__session *s = &sh->slots[i];
      if (s->tr == &kite__transport_kcp)
        kite__kcp_destroy(s->link);
      else if (s->tr == &kite__transport_v2)
        kite__v2_session_free(s);
      else if (s->tr) /* TCP, WebSocket: a kite__tconn */
        kite__tconn_free(s->link);
    }
  }
  if (sh->notices.slots)
    kite__mpsc_free(&sh->notices);
  kite__cmd *cmd;
  if (sh->inbox.slots) {
    while ((cmd = kite__mpsc_pop(&sh->inbox))) {
      if (cmd->type == KITE__CMD_UNRELIABLE)
        continue; /* a slot: freed with the pool below */
      if (cmd->type == KITE__CMD_BROADCAST ||
          cmd->type == KITE__CMD_UBROADCAST) /* its share of the frame */
        kite__shared_frame_put(cmd->frame);
      free(cmd);
    }
    kite__mpsc_free(&sh->inbox);
  }
  kite__upool_free(&sh->upool);
  kite__tconn_pre_free_all(sh);
  if (sh->slots) /* initialised: the linger wheel is too */
    kite__tconn_linger_free_all(sh);
  kite__tcp_acceptor_close(&sh->tcp_ls);
  free(sh->tcp_rx);
  kite__map_free(&sh->hs);
  kite__map_free(&sh->convs);
  kite__srclimit_free(&sh->srcs);
  kite__closed_free(&sh->closed);
  kite__kcp_pool_destroy(sh->pool);
  free(sh->slots);
  free(sh->rx);
  free(sh->tx);
  free(sh->scratch);
  free(sh->seal);
  kite__cookie_jar_clear(&sh->jar);
  if (sh->fd >= 0)
    close(sh->fd);
  if (sh->epfd >= 0)
    close(sh->epfd);
  if (sh->evfd >= 0)
    close(sh->evfd);
}

void kite__shard_wake(kite__shard *sh) {
  /* One eventfd write per wake-up, not per command. */
  if (atomic_exchange_explicit(&sh->wake_pending, 1, memory_order_acq_rel) == 0) {
    uint64_t one = 1;
    ssize_t w = write(sh->evfd, &one, sizeof(one));
    (void)w; /* the counter cannot overflow: it is drained every wake-up */
  }
}

bool kite__shard_post(kite__shard *sh, kite__cmd *cmd) {
  if (!kite__mpsc_push(&sh->inbox, cmd))
    return false;
  kite__shard_wake(sh);
  return true;
}

void kite__shard_send_ctrl(kite__shard *sh, const kite__ctrl *c,
                           const kite__addr *to, const kite__local *local) {
  uint8_t buf[KITE__CTRL_MAX];
  int n = kite__ctrl_encode(buf, sizeof(buf), c);
  if (n > 0)
    kite__udp_tx_add(sh->tx, to, local, buf, (size_t)n);
}

bool kite__shard_handoff(kite__shard *sh, uint32_t owner, const uint8_t *data,
                         size_t len, const kite__addr *from,
                         const kite__local *local) {
  kite__cmd *cmd = malloc(sizeof(*cmd) + len);
  if (!cmd)
    return false;
  *cmd = (kite__cmd){.type = KITE__CMD_DGRAM, .len = (uint32_t)len,
                     .from = *from, .local = *local};
  memcpy(cmd->data, data, len);
  if (kite__shard_post(&sh->srv->shards[owner], cmd))
    return true;
  free(cmd);
  KITE__STAT_INC(sh, inbox_full);
  return false;
}

void kite__shard_dispatch(kite__shard *sh, const uint8_t *data, size_t len,
                          const kite__addr *from, const kite__local *local) {
  if (len < 4) {
    KITE__STAT_INC(sh, drop_short);
    return;
  }
  if (kite__ctrl_is_control(data, len)) {
    kite__handshake_dispatch(sh, data, len, from, local);
    return;
  }
  if (len < KITE_KCP_OVERHEAD) {
    KITE__STAT_INC(sh, drop_short);
    return;
  }
  uint32_t conv = kite__kcp_peek_conv(data);
  uint32_t owner = kite__conv_shard(conv);
  if (owner != sh->index) {
    /* Steering is off or unavailable: the owner is one hand-off away. */
    if (owner < sh->srv->nshards) {
      if (kite__shard_handoff(sh, owner, data, len, from, local))
        KITE__STAT_INC(sh, handoffs);
    } else
      KITE__STAT_INC(sh, drop_unknown_conv);
    return;
  }
  kite__session *s = kite__shard_session_by_conv(sh, conv);
  if (!s) {
    KITE__STAT_INC(sh, drop_unknown_conv);
    kite__handshake_closed_heard(sh, conv, from, len);
    return;
  }
  if (s->tr == &kite__transport_v2) { /* its own address rules: section 7 */
    kite__v2_session_input(sh, s, data, len, from);
    return;
  }
  if (!kite__addr_equal(&s->peer, from)) {
    KITE__STAT_INC(sh, drop_wrong_addr); /* never acted on, never answered */
    return;
  }
  kite__kcp_session_input(sh, s, data, len);
}

/* The kernel dropped datagrams: the receive buffer was full, the shard
 * behind. Counted, and said (at most a line a second). */
static void count_overflows(kite__shard *sh) {
  uint32_t n = sh->rx->drops - sh->rx_drops_seen;
  sh->rx_drops_seen = sh->rx->drops;
  KITE__STAT_ADD(sh, rx_overflows, n);
  /* Behind: refuse new sessions for a second, so that the ones it has
   * are served first (kite__shard_overloaded()). */
  uint32_t refuse = sh->srv->cfg.overload_refuse_ms;
  if (refuse)
    sh->overload_until_ms = (sh->now + refuse) | 1;
  uint32_t held;
  if (kite__ratelog_allow(&sh->log_overflow, sh->now, &held)) {
    char more[48];
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "shard %u: the kernel dropped %u datagrams: the receive buffer "
               "was full (udp_rcvbuf; the shard is behind)%s", sh->index, n,
               kite__ratelog_tail(more, sizeof(more), held));
  }
}

/* Returns how many datagrams it read; sets sh->rx_full when a read filled
 * a whole batch (more may be waiting). */
static uint32_t read_datagrams(kite__shard *sh) {
  uint32_t got = 0;
  for (int b = 0; b < RX_BATCHES_PER_WAKEUP; b++) {
    int err = 0;
    int n = kite__udp_recv(sh->fd, sh->rx, &err);
    if (n < 0) {
      kite__logf(&sh->srv->log, KITE_LOG_WARN, "shard %u: recvmmsg() failed: %s",
                 sh->index, strerror(err));
      return got;
    }
    got += (uint32_t)n;
    if (sh->rx->drops != sh->rx_drops_seen) /* the kernel's running count */
      count_overflows(sh);
    for (int i = 0; i < n; i++) {
      struct mmsghdr *m = &sh->rx->msgs[i];
      KITE__STAT_INC(sh, dgrams_in);
      KITE__STAT_ADD(sh, bytes_in, m->msg_len);
      if (m->msg_hdr.msg_flags & MSG_TRUNC) {
        KITE__STAT_INC(sh, drop_truncated);
        continue;
      }
      kite__shard_dispatch(sh, sh->rx->buf[i], m->msg_len, &sh->rx->from[i],
                           &sh->rx->local[i]);
    }
    if (n < KITE__UDP_BATCH)
      return got;
    sh->rx_full = true;
  }
  return got;
}

/* Gives back a reservation made by a sender on another thread, once the
 * frame is in KCP (or dropped): it belongs to the slot, whichever session
 * holds it now. */
static void unreserve(kite__shard *sh, kite_session_id id, uint32_t segs) {
  uint32_t slot = kite__sid_slot(id);
  if (slot < sh->nslots)
    kite__session_unreserve(&sh->slots[slot], segs);
}

static void run_broadcast(kite__shard *sh, kite__cmd *cmd) {
  const kite__shared_frame *f = cmd->frame;
  for (uint32_t i = 0; i < cmd->count; i++) {
    kite_session_id id;
    memcpy(&id, cmd->data + i * sizeof(id), sizeof(id));
    kite__session *s = kite__session_by_id(sh->srv, id);
    if (!s || !kite__session_live(s))
      KITE__STAT_INC(sh, drop_stale_cmd);
    else if (kite__session_send_encoded(s, f->data, f->bytes) < 0)
      kite__session_close(s, KITE_CLOSE_SLOW_PEER); /* a gap is worse */
    else
      KITE__STAT_INC(sh, frames_out);
    unreserve(sh, id, cmd->segs);
  }
  kite__shared_frame_put(cmd->frame);
}

void kite__shard_run_abandoned(kite__shard *sh, kite__cmd *cmd) {
  kite_server *srv = sh->srv;
  for (uint32_t i = 0; i < cmd->count; i++) {
    kite_session_id id;
    memcpy(&id, cmd->data + i * sizeof(id), sizeof(id));
    unreserve(sh, id, cmd->segs);
    kite__session_close_any(srv, id, KITE_CLOSE_SLOW_PEER);
  }
  atomic_fetch_add_explicit(&srv->bcast_refused, 1, memory_order_relaxed);
  kite__shared_frame_put(cmd->frame);
  free(cmd);
}

void kite__shard_run_command(kite__shard *sh, kite__cmd *cmd) {
  kite__session *s;
  switch (cmd->type) {
  case KITE__CMD_BROADCAST:
    run_broadcast(sh, cmd);
    break;
  case KITE__CMD_SEND: {
    s = kite__session_by_id(sh->srv, cmd->id);
    if (!s || !kite__session_live(s))
      KITE__STAT_INC(sh, drop_stale_cmd);
    else if (kite__session_send_frame(s, cmd->msg_id, cmd->fflags, cmd->data,
                                      cmd->len) < 0)
      kite__session_close(s, KITE_CLOSE_SLOW_PEER); /* backlog over limit */
    else
      KITE__STAT_INC(sh, frames_out);
    /* Only now, with the frame in KCP's published queue depth, is its
     * reservation given back, so senders never see it counted nowhere. */
    unreserve(sh, cmd->id, cmd->segs);
    break;
  }
  case KITE__CMD_CLOSE:
    s = kite__session_by_id(sh->srv, cmd->id);
    if (s && kite__session_live(s))
      kite__session_close(s, cmd->reason);
    else
      KITE__STAT_INC(sh, drop_stale_cmd);
    break;
  case KITE__CMD_DGRAM:
    kite__shard_dispatch(sh, cmd->data, cmd->len, &cmd->from, &cmd->local);
    break;
  case KITE__CMD_CONNECT:
    kite__handshake_connect(sh, &cmd->ctrl, &cmd->from, &cmd->local,
                            cmd->fresh);
    break;
  case KITE__CMD_UNRELIABLE:
  case KITE__CMD_UBROADCAST:
    kite__lane_run(sh, cmd); /* gives the command back its own way */
    return;
  }
  free(cmd);
}

void kite__shard_notice(kite__session *s) {
  kite__shard *sh = s->shard;
  /* Cannot be full: it holds each session at most once. */
  while (!kite__mpsc_push(&sh->notices, s))
    ;
  kite__shard_wake(sh);
}

/* Workers' words: a session's mailbox has room again, or its
 * on_disconnect ran and the slot can go. */
static void drain_notices(kite__shard *sh) {
  kite__session *s;
  while ((s = kite__mpsc_pop(&sh->notices))) {
    switch (kite__logic_noticed(sh->srv->logic, s->app)) {
    case KITE__NOTICE_DONE:
      if (s->state == KITE__S_ZOMBIE)
        kite__session_release(s);
      break;
    case KITE__NOTICE_RESUME:
      kite__session_resume(s);
      break;
    case KITE__NOTICE_NONE:
      break;
    }
  }
}

/* Returns whether it stopped at its budget (more may be waiting). */
static bool drain_inbox(kite__shard *sh) {
  /* Clear the flag before reading, so a post racing with us wakes us. */
  atomic_store_explicit(&sh->wake_pending, 0, memory_order_release);
  kite__cmd *cmd;
  for (int i = 0; i < INBOX_PER_WAKEUP; i++) {
    if (!(cmd = kite__mpsc_pop(&sh->inbox)))
      return false;
    kite__shard_run_command(sh, cmd);
  }
  return true;
}

static void flush_dirty(kite__shard *sh) {
  while (sh->dirty) {
    kite__session *s = sh->dirty;
    sh->dirty = s->dirty_next;
    s->dirty = 0;
    if (!kite__session_connected(s))
      continue;
    s->tr->flush(s);
    kite__session_settle(s);
    if (kite__session_connected(s))
      kite__session_schedule(s);
  }
}

/* The server is stopping: refuse new sessions, drop half-open ones, and
 * close each open one gracefully (reason 3): KCP's until their data is
 * acknowledged or stop_timeout_ms passes, TCP's as their lingering close
 * writes what is queued (session.c). */
static void begin_stop(kite__shard *sh) {
  sh->stop_seen = true;
  if (sh->tcp_ls.fd >= 0) /* connections still queued there are refused */
    kite__tcp_acceptor_close(&sh->tcp_ls);
  kite__tconn_pre_free_all(sh); /* no OPEN yet: nothing to tell them */
  for (uint32_t i = 0; i < sh->nslots; i++) {
    kite__session *s = &sh->slots[i];
    if (s->state == KITE__S_HALF_OPEN)
      kite__session_close(s, KITE_CLOSE_NORMAL); /* silently */
    else if (s->state == KITE__S_OPEN)
      kite__session_close(s, KITE_CLOSE_SHUTDOWN);
  }
}

static void account_tx(kite__shard *sh, uint64_t *sent, uint64_t *dropped,
                       uint64_t *bytes) {
  KITE__STAT_ADD(sh, dgrams_out, sh->tx->sent - *sent);
  KITE__STAT_ADD(sh, dgrams_out_dropped, sh->tx->dropped - *dropped);
  KITE__STAT_ADD(sh, bytes_out, sh->tx->bytes - *bytes);
  *sent = sh->tx->sent;
  *dropped = sh->tx->dropped;
  *bytes = sh->tx->bytes;
}

/* Dense traffic: sleeps out the rest of the window begun at the last
 * wake-up (server/wake.h), so that one wake-up serves what arrives
 * meanwhile. Inbox posts wait too, at most the window. */
static void hold(kite__shard *sh) {
  struct timespec until = {
      .tv_sec = (time_t)(sh->hold_until_us / 1000000u),
      .tv_nsec = (long)(sh->hold_until_us % 1000000u) * 1000,
  };
  sh->hold_until_us = 0;
  KITE__STAT_INC(sh, wake_holds);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
    ;
}

void *kite__shard_main(void *arg) {
  kite__shard *sh = arg;
  kite_server *srv = sh->srv;
  current_shard = sh;
  uint64_t sent = 0, dropped = 0, bytes = 0;
  struct epoll_event ev[EVENTS_PER_WAIT];
  uint32_t window_us = srv->cfg.wake_coalesce_us;
  for (;;) {
    if (sh->hold_until_us)
      hold(sh); /* the timeouts below are then late by the window at most */
    int timeout = sh->dirty ? 0 : kite__wheel_timeout_ms(&sh->wheel, sh->now, 1000);
    int game = kite__logic_shard_timeout_ms(srv->logic, sh->index, sh->now, 1000);
    int linger = kite__wheel_timeout_ms(&sh->linger_wheel, sh->now, 1000);
    if (timeout < 0 || (game >= 0 && game < timeout))
      timeout = game;
    if (timeout < 0 || (linger >= 0 && linger < timeout))
      timeout = linger;
    int pre = kite__tconn_pre_timeout_ms(sh);
    if (timeout < 0 || (pre >= 0 && pre < timeout))
      timeout = pre;
    int resume = sh->accept_paused ? kite__tconn_accept_timeout_ms(sh) : -1;
    if (timeout < 0 || (resume >= 0 && resume < timeout))
      timeout = resume;
    if (timeout < 0)
      timeout = 1000; /* nothing scheduled: still look at the stop flag */
    int n = epoll_wait(sh->epfd, ev, EVENTS_PER_WAIT, timeout);
    if (n < 0 && errno != EINTR)
      kite__logf(&srv->log, KITE_LOG_ERROR, "shard %u: epoll_wait() failed: %s",
                 sh->index, strerror(errno));
    uint64_t start_us = kite__now_us(); /* the iteration's one clock read */
    sh->now = (uint32_t)(start_us / 1000u);
    KITE__STAT_INC(sh, wakeups);
    uint32_t served = 0; /* datagrams read */
    /* Whether more may be waiting than a hold would gather: a read filled
     * a whole batch, a budget ran out, or TCP had events (its per-wake-up
     * read budgets would turn a hold into a cap on a connection's rate). */
    sh->rx_full = false;
    bool busy = false;
    for (int i = 0; i < n; i++) {
      switch (ev[i].data.u64) {
      case KITE__EV_UDP:
        served += read_datagrams(sh);
        break;
      case KITE__EV_WAKE: {
        uint64_t v;
        ssize_t r = read(sh->evfd, &v, sizeof(v));
        (void)r;
        break;
      }
      case KITE__EV_LISTEN:
        busy = true;
        if (sh->tcp_ls.fd >= 0)
          kite__tconn_accept_ready(sh);
        break;
      default:
        busy = true;
        kite__tconn_ready(sh, ev[i].data.ptr, ev[i].events);
      }
    }
    busy |= drain_inbox(sh);
    drain_notices(sh);
    if (!sh->stop_seen && atomic_load_explicit(&srv->stopping, memory_order_acquire))
      begin_stop(sh);
    kite__wheel_advance(&sh->wheel, sh->now, kite__session_on_timer, sh);
    kite__tconn_linger_advance(sh);
    kite__tconn_pre_advance(sh);
    if (sh->accept_paused)
      kite__tconn_accept_advance(sh);
    kite__logic_shard_run(srv->logic, sh->index, sh->now);
    if (kite__ms_reached(sh->now, sh->logs_due_ms)) { /* 10 looks a second */
      sh->logs_due_ms = sh->now + 100;
      kite__shard_logs_flush(sh);
    }
    if (srv->tokens.n && kite__ms_reached(sh->now, sh->tokens_due_ms)) {
      sh->tokens_due_ms = sh->now + 1000; /* its stripe, once a second */
      kite__tokens_expire(&srv->tokens, sh->index % srv->tokens.n,
                          (uint64_t)time(NULL));
    }
    kite__shard_trim_tick(sh);
    flush_dirty(sh);
    kite__udp_tx_flush(sh->tx);
    account_tx(sh, &sent, &dropped, &bytes);
    if (sh->stop_seen && sh->nsessions == 0 && sh->nlinger == 0)
      break;
    /* Dropping datagrams (kite__shard_overloaded()): behind, so no sleep. */
    if (kite__wake_hold(window_us, served, start_us, sh->io_last_us,
                        busy || sh->rx_full || kite__shard_overloaded(sh)))
      sh->hold_until_us = start_us + window_us;
    if (served)
      sh->io_last_us = start_us;
  }
  current_shard = NULL;
  return NULL;
}
