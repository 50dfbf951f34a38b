/*
 * kite-bench --ws (load_ws.c, load_ws_io.c): a session's state and the
 * load's, shared by the two files: load_ws_io.c moves WebSocket frames
 * (wslay's callbacks, the bounded output, the frames in), load_ws.c the kite
 * stream inside them, the handshake and the run. All on the load's one
 * thread, which owns every field here.
 */
#ifndef KITE_BENCH_LOAD_WS_H
#define KITE_BENCH_LOAD_WS_H

#include "bench.h"
#include "driver.h"
#include "ws_hs.h"

#include "net/addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wslay_frame_context;

#define BENCH_MSG_ID 1
#define CONNECTING_MAX 2000 /* handshakes in flight at once */
#define EVENTS_MAX 256
#define READ_MAX 65536
#define HEAD_MAX 1024       /* the server's 101 */
#define WS_HDR_MAX 14       /* a frame header, masked, 64-bit length */
#define PING_DEFAULT_US 15000000
#define PING_SCAN_US 100000

enum ws_state { WS_CONNECTING, WS_UPGRADING, WS_OPENING, WS_READY };

typedef struct ws_sess {
  int fd; /* -1: ended */
  uint8_t state;       /* ws_state */
  bool out_armed;      /* EPOLLOUT is on */
  bool in_frame;       /* a frame's payload is being read */
  uint8_t frame_op;
  uint8_t ctl_len;
  uint64_t frame_len, frame_off;
  struct wslay_frame_context *fr;
  char accept[29];     /* the Sec-WebSocket-Accept the 101 must carry */
  uint8_t *head;       /* the 101 so far (HEAD_MAX), then unused */
  uint8_t *acc;        /* stream bytes of the frame in progress (acc_cap) */
  uint8_t *out;        /* bytes the kernel has not taken (out_cap) */
  uint32_t head_len, acc_len, out_len, out_off;
  uint64_t last_send_us;
  uint8_t ctl[125];    /* a control frame's payload */
} ws_sess;

typedef struct ws_io {
  driver *d;
  const bench_config *cfg;
  ws_sess *s;
  int ep;
  uint32_t pending; /* handshakes in flight */
  uint32_t acc_cap, out_cap, max_frame;
  uint64_t ping_us, next_scan_us;
  kite__addr addr;
  const char *path;
  /* wslay's callbacks work on these (one session at a time). */
  const uint8_t *in;
  size_t in_len, in_off;
  uint8_t *stage;   /* a frame out: header and masked payload */
  size_t stage_len, stage_cap;
  uint8_t *msg;     /* a message's payload, before masking */
  ws_random rnd;
  uint8_t rbuf[READ_MAX];
} ws_io;

static inline uint32_t sid(ws_io *io, ws_sess *s) { return (uint32_t)(s - io->s); }

/* load_ws_io.c */
extern const struct wslay_frame_callbacks ws_callbacks; /* user: the ws_io */
/* Ends a session (counted as failed), saying |why| unless --quiet. */
void sess_end(ws_io *io, ws_sess *s, const char *why);
/* EPOLLOUT on or off. */
void arm(ws_io *io, ws_sess *s, bool out);
/* |n| bytes out, all or nothing: 0, KITE_EFULL or KITE_ECLOSED. */
int write_out(ws_io *io, ws_sess *s, const uint8_t *p, size_t n);
/* What the kernel did not take, again (EPOLLOUT). */
void flush_out(ws_io *io, ws_sess *s);
/* One masked frame of opcode |op|, payload io->msg[0, n): as write_out. */
int send_frame(ws_io *io, ws_sess *s, uint8_t op, size_t n);
/* A kite frame in one binary message: as write_out. */
int send_kite(ws_io *io, ws_sess *s, uint16_t msg_id, uint16_t flags,
              const uint8_t *body, uint32_t len);
/* Bytes read after the 101: WebSocket frames, their payloads to on_stream. */
void feed(ws_io *io, ws_sess *s, const uint8_t *p, size_t n);

/* load_ws.c: stream bytes (OPENED, then kite frames). 0, or -1 (ended). */
int on_stream(ws_io *io, ws_sess *s, const uint8_t *p, size_t n);

#endif
