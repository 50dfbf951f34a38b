/*
 * Why a session ended: PROTOCOL.md's one reason code, carried by CLOSE and
 * passed to the disconnect callbacks of both the server (server.h) and the
 * client (client.h, which adds reasons of its own from 0x100 up, outside
 * the byte that CLOSE carries).
 */
#ifndef KITE_REASON_H
#define KITE_REASON_H

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PROTOCOL.md section 2, "Closing". */
typedef enum kite_close_reason {
  KITE_CLOSE_NORMAL = 0,    /* the peer closed */
  KITE_CLOSE_IDLE = 1,      /* nothing from the peer for idle_timeout_ms */
  KITE_CLOSE_PROTOCOL = 2,  /* the peer broke the protocol */
  KITE_CLOSE_SHUTDOWN = 3,  /* the server stopped */
  KITE_CLOSE_KICKED = 4,    /* kite_session_close() */
  KITE_CLOSE_DEAD_LINK = 5, /* KCP: no acknowledgement for dead_link_ms;
                               TCP: the connection was reset or failed */
  KITE_CLOSE_SLOW_PEER = 6, /* output backlog over its limit (KCP's send
                               queue; on TCP tcp_send_max, or output the
                               peer took none of for tcp_stall_ms) */
  KITE_CLOSE_KEY_EXHAUSTED = 7, /* version 2: the session's packet or
                               record numbers reached 2^48 - 3
                               (PROTOCOL-v2.md section 9); to go on, the
                               client needs a new token */
} kite_close_reason;

/* A static name for a close reason ("unknown" for other values; never
 * NULL). Thread-safe. */
KITE_API
const char *kite_close_reason_name(int reason);

#ifdef __cplusplus
}
#endif
#endif
