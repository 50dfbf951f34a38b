/*
 * A TCP connection on its shard (session_tcp.c, tcp_linger.c). Allocated
 * at accept and owned by its shard; while |s| is set it carries that
 * session (the session's |link|), and once the session closes it lingers
 * on its own (tcp_linger.c): queued output written, the write side shut,
 * input drained to EOF, then closed, so the peer never gets a reset with
 * data still queued.
 */
#ifndef KITE_SERVER_TCP_CONN_H
#define KITE_SERVER_TCP_CONN_H

#include "base/wheel.h"
#include "net/addr.h"
#include "net/tcp_out.h"
#include "proto/control.h"
#include "proto/frame.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct kite__shard kite__shard;
typedef struct kite__session kite__session;

typedef struct kite__tconn {
  int fd;
  uint32_t events;    /* the epoll mask armed now */
  kite__session *s;   /* NULL once lingering */
  kite__frame_reader reader;
  kite__tcp_out out;
  uint8_t *held;      /* input cut short by backpressure, to feed again */
  uint32_t held_len;
  uint8_t open_have;  /* bytes of the OPEN preface read */
  uint8_t open_buf[KITE__CTRL_HDR];
  bool shut_wr;       /* lingering: FIN sent */
  bool peer_eof;      /* lingering: the peer's FIN read */
  uint32_t linger_deadline_ms;
  kite__timer linger_timer;
  struct kite__tconn *linger_prev, *linger_next;
} kite__tconn;

/* session_tcp.c */
#define KITE__TCP_RX_BYTES 65536 /* one read() into the shard's buffer */
/* Accepts what waits on the shard's listener, within a budget. When
 * accept fails and leaves the connection queued (out of descriptors with
 * no spare to give up), takes the listener out of the epoll set for a
 * back-off instead of spinning on it. */
void kite__tconn_accept_ready(kite__shard *sh);
/* Milliseconds until a paused listener is polled again, or -1. */
int kite__tconn_accept_timeout_ms(const kite__shard *sh);
/* Puts a paused listener back once its pause is over. */
void kite__tconn_accept_advance(kite__shard *sh);
/* epoll reported |events| on |c|. */
void kite__tconn_ready(kite__shard *sh, kite__tconn *c, uint32_t events);
/* Arms the epoll mask |events| for |c| (no call when unchanged). */
void kite__tconn_arm(kite__shard *sh, kite__tconn *c, uint32_t events);

/* tcp_linger.c */
/* Takes |c| (its session gone): writes what is queued, shuts the write
 * side, reads to EOF, then closes; all within tcp_linger_ms. When as many
 * linger as the shard has session slots it is closed at once instead. */
void kite__tconn_linger(kite__shard *sh, kite__tconn *c);
void kite__tconn_linger_ready(kite__shard *sh, kite__tconn *c,
                            uint32_t events);
void kite__tconn_linger_advance(kite__shard *sh);
/* Closes every lingering connection (the shard is going away). */
void kite__tconn_linger_free_all(kite__shard *sh);
/* Closes |c|'s descriptor and frees it. */
void kite__tconn_free(kite__tconn *c);

#endif
