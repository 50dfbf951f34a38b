/*
 * The TCP half of the scripted raw version-2 server (e2e/v2_fake_server.h,
 * which includes this file at its end: include that one). A listener on
 * loopback, port 0; one connection at a time: OPEN v2 read and checked,
 * OPENED v2 (or the REJECT the script asks for, or an OPENED sealed under
 * a wrong key), then records both ways (PROTOCOL-v2.md section 8), frames
 * echoed, pings answered.
 */
#ifndef KITE_TEST_V2_FAKE_TCP_H
#define KITE_TEST_V2_FAKE_TCP_H

typedef struct v2ts {
  int lfd, fd;
  char addr[64];
  kite__addr local;
  uint8_t key[32];
  uint64_t protocol_id;
  /* the script */
  uint8_t reject;    /* answer OPEN with this REJECT (0: OPENED) */
  bool bad_opened;   /* OPENED sealed under a wrong key */
  uint32_t idle_ms, max_frame;
  /* the session */
  bool open;
  kite__v2tok tok;
  kite__v2keys keys;
  uint64_t rn;       /* our next record number */
  kite__v2rec_reader rd;
  bool rd_live;
  kite__frame_reader reader;
  bool eof;          /* the client's FIN came */
  v2fs_seen seen;
} v2ts;

static inline v2ts *v2ts_new(const uint8_t key[32], uint64_t protocol_id) {
  v2ts *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->fd = -1;
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  assert_true(s->lfd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(s->lfd, 8), 0);
  socklen_t len = sizeof(a);
  getsockname(s->lfd, (struct sockaddr *)&a, &len);
  memcpy(&s->local.v4, &a, sizeof(a));
  snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", ntohs(a.sin_port));
  memcpy(s->key, key, 32);
  s->protocol_id = protocol_id;
  s->idle_ms = 10000;
  s->max_frame = 65536;
  return s;
}

static inline void v2ts_drop(v2ts *s) {
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  if (s->rd_live)
    kite__v2rec_reader_free(&s->rd);
  s->rd_live = false;
  kite__frame_reader_free(&s->reader);
  s->open = false;
}

static inline void v2ts_free(v2ts *s) {
  v2ts_drop(s);
  close(s->lfd);
  kite__v2tok_wipe(&s->tok);
  free(s);
}

static inline void v2ts_write(v2ts *s, const void *p, size_t len) {
  assert_int_equal(send(s->fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* One record of |len| plaintext bytes. */
static inline void v2ts_send_record(v2ts *s, const void *pt, size_t len) {
  uint8_t buf[KITE__V2REC_OVERHEAD + KITE__V2REC_MAX];
  int n = kite__v2rec_seal(buf, sizeof(buf), s->rn++, s->keys.s2c, pt, len);
  assert_true(n > 0);
  v2ts_write(s, buf, (size_t)n);
}

static inline void v2ts_send_frame(v2ts *s, uint16_t msg_id, uint16_t flags,
                                   const void *body, uint32_t len) {
  uint8_t pt[KITE__FRAME_HDR + 256];
  assert_true(len <= 256);
  kite__frame_header(pt, msg_id, flags, body, len, false);
  memcpy(pt + KITE__FRAME_HDR, body, len);
  v2ts_send_record(s, pt, KITE__FRAME_HDR + len);
}

/* Accepts the connection and answers its OPEN v2. |poll_client| is called
 * between waits so that a client in the same thread makes progress. */
static inline void v2ts_accept(v2ts *s, void (*poll_client)(void *),
                               void *arg) {
  for (int i = 0; i < 500 && s->fd < 0; i++) {
    poll_client(arg);
    s->fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK);
    if (s->fd < 0)
      v2fs_readable(s->lfd, 10);
  }
  assert_true(s->fd >= 0);
  uint8_t open[KITE__V2CTL_MAX];
  size_t have = 0;
  for (int i = 0; i < 500 && have < 552; i++) {
    poll_client(arg);
    ssize_t r = recv(s->fd, open + have, 552 - have, 0);
    if (r > 0)
      have += (size_t)r;
    else
      v2fs_readable(s->fd, 10);
  }
  assert_int_equal(have, 552);
  kite__v2ctl k;
  assert_int_equal(kite__v2ctl_decode(open, have, &k), 0);
  assert_int_equal(k.type, KITE__CTRL_OPEN);
  kite__v2addr local;
  kite__v2addr_from_sockaddr(&s->local.sa, &local);
  kite__v2tok_server srv = {.protocol_id = s->protocol_id, .key = s->key};
  kite__v2tok priv;
  int rc = kite__v2tok_verify(&srv, v2fs_unix_now(), &local, k.expire_ts,
                              k.token_nonce, k.sealed, &priv);
  if (rc < 0 || s->reject) {
    kite__v2ctl r;
    memset(&r, 0, sizeof(r));
    r.type = KITE__CTRL_REJECT;
    r.reason = rc < 0 ? kite__v2tok_reject_reason(rc) : s->reject;
    uint8_t buf[KITE__V2CTL_MAX];
    int n = kite__v2ctl_encode(buf, sizeof(buf), &r);
    v2ts_write(s, buf, (size_t)n);
    return;
  }
  s->tok = priv;
  uint8_t accept_nonce[8];
  randombytes_buf(accept_nonce, 8);
  kite__v2accept a = {.idle_timeout_ms = s->idle_ms,
                      .max_frame = s->max_frame,
                      .max_unreliable =
                          kite__v2_max_unreliable(1400, s->max_frame)};
  uint8_t wrong[32];
  memset(wrong, 0x5A, sizeof(wrong));
  uint8_t opened[KITE__V2CTL_OPENED];
  kite__v2ctl_opened_seal(opened, accept_nonce, &a,
                          s->bad_opened ? wrong : priv.s2c_key);
  v2ts_write(s, opened, sizeof(opened));
  kite__v2_traffic_keys(&s->keys, priv.c2s_key, priv.s2c_key, true, NULL,
                        accept_nonce);
  assert_int_equal(kite__v2rec_reader_init(&s->rd, s->keys.c2s), 0);
  s->rd_live = true;
  kite__frame_reader_init(&s->reader, 1u << 20);
  s->rn = 0;
  s->open = true;
}

static inline int v2ts_echo_frame(void *user, const kite__frame_hdr *h,
                                  const uint8_t *body) {
  v2ts *s = user;
  v2fs_seen *e = &s->seen;
  if (e->nframes < V2FS_FRAMES) {
    e->h[e->nframes] = *h;
    memcpy(e->body[e->nframes], body, h->len < V2FS_BODY ? h->len : V2FS_BODY);
    e->nframes++;
  }
  if (h->msg_id == KITE__MSG_CLOSE_NOTICE) {
    e->closes++;
    e->close_reason = h->len ? body[0] : 0;
    return 0;
  }
  if (h->msg_id == KITE__MSG_PING && (h->flags & KITE__FRAME_F_PONG))
    return 0;
  if (h->len <= 256)
    v2ts_send_frame(s, h->msg_id,
                    h->msg_id == KITE__MSG_PING ? KITE__FRAME_F_PONG : 0, body,
                    h->len);
  return 0;
}

/* Reads what the client sent (up to |ms| of real time for at least one
 * frame more than before, |poll_client| between waits); echoes frames. */
static inline void v2ts_pump(v2ts *s, int want_frames,
                             void (*poll_client)(void *), void *arg) {
  for (int i = 0; i < 300 && s->open; i++) {
    if (s->seen.nframes >= want_frames && i > 0)
      break;
    poll_client(arg);
    uint8_t buf[4096];
    ssize_t r = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r == 0) {
      s->eof = true;
      return;
    }
    if (r < 0) {
      v2fs_readable(s->fd, 10);
      continue;
    }
    size_t off = 0;
    while (off < (size_t)r) {
      const uint8_t *pt;
      size_t pt_len;
      ptrdiff_t used =
          kite__v2rec_read(&s->rd, buf + off, (size_t)r - off, &pt, &pt_len);
      if (used < 0) {
        s->seen.drops++;
        return;
      }
      off += (size_t)used;
      if (pt)
        assert_true(kite__frame_reader_feed(&s->reader, pt, pt_len,
                                            v2ts_echo_frame, s, NULL) >= 0);
    }
  }
}

#endif
