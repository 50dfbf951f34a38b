/*
 * The server's configuration: the documented defaults (include/kite/
 * server.h) and the bounds every field is checked against.
 */
#include "server/server_internal.h"

#include "proto/frame.h"

#include <string.h>

void kite_server_config_init(kite_server_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->udp_addr = "127.0.0.1:7001";
  cfg->max_sessions = 100000;
  cfg->idle_timeout_ms = 10000;
  cfg->handshake_timeout_ms = 5000;
  cfg->cookie_lifetime_s = 10;
  cfg->max_frame = 65536;
  kite__kcp_config kc; /* KCP's defaults live with the engine */
  kite__kcp_config_default(&kc);
  cfg->mtu = kc.mtu;
  cfg->snd_wnd = kc.snd_wnd;
  cfg->rcv_wnd = kc.rcv_wnd;
  cfg->interval_ms = kc.interval_ms;
  cfg->dead_link_ms = kc.dead_link_ms;
  cfg->send_queue_max = kc.snd_queue_max;
  cfg->shard_segments_max = 65536;
  cfg->inbox_max = 65536;
  cfg->stop_timeout_ms = 3000;
  cfg->close_timeout_ms = 3000;
  cfg->closed_linger_ms = 10000;
  cfg->closed_linger_max = 4096;
  cfg->steering = true;
  cfg->udp_rcvbuf = 4u << 20;
  cfg->udp_sndbuf = 4u << 20;
  cfg->overload_refuse_ms = 1000;
  cfg->trim_interval_ms = 10000;
  cfg->shard_segments_keep = 256;
  cfg->shard_rings_keep = 64;
  cfg->malloc_trim_min = 4u << 20;
  cfg->wake_coalesce_us = 1000;
  cfg->max_sessions_per_addr = 64;
  cfg->max_sessions_per_prefix = 256;
  cfg->max_halfopen_per_addr = 16;
  cfg->max_halfopen_per_prefix = 64;
  cfg->token_record_max = 65536;
  cfg->tcp_send_max = 1u << 20;
  cfg->tcp_stall_ms = 10000;
  cfg->tcp_linger_ms = 2000;
  cfg->tcp_preopen_max = 1024;
  cfg->tcp_max_per_addr = 256;
  cfg->tcp_max_per_prefix = 1024;
  cfg->http_head_max = 8192;
  cfg->ws_max_message = 262144;
  cfg->mailbox_depth = 256;
  cfg->mailbox_bytes = 262144;
  cfg->unreliable_bytes_per_s = 262144;
  cfg->unreliable_queue_max = 1024;
  cfg->timers_max = 16384;
  cfg->log_level = KITE_LOG_INFO;
}

/* Every field with its bounds; the log names the one that is wrong. */
int kite__server_config_check(const kite_server_config *c, kite__log *log) {
#define CHECK(cond, field)                                                   \
  do {                                                                       \
    if (!(cond)) {                                                           \
      kite__logf(log, KITE_LOG_ERROR, "config: %s is out of range", field);  \
      return KITE_EINVAL;                                                    \
    }                                                                        \
  } while (0)
  CHECK(c->threads >= 0 && c->threads <= KITE__SHARDS_MAX, "threads");
  CHECK(c->max_sessions >= 1 && c->max_sessions <= (1u << 24), "max_sessions");
  CHECK(c->idle_timeout_ms >= 100, "idle_timeout_ms");
  CHECK(c->handshake_timeout_ms >= 100, "handshake_timeout_ms");
  CHECK(c->cookie_lifetime_s >= 1 && c->cookie_lifetime_s <= 3600, "cookie_lifetime_s");
  CHECK(c->mtu >= 200 && c->mtu <= KITE__UDP_DGRAM_MAX, "mtu");
  CHECK(c->snd_wnd >= 4 && c->snd_wnd <= 4096, "snd_wnd");
  CHECK(c->rcv_wnd >= 4 && c->rcv_wnd <= 4096, "rcv_wnd");
  CHECK(c->interval_ms >= 1 && c->interval_ms <= 1000, "interval_ms");
  CHECK(c->dead_link_ms >= 100, "dead_link_ms");
  CHECK(c->send_queue_max >= 16 && c->send_queue_max <= 65535, "send_queue_max");
  CHECK(c->close_timeout_ms >= 1 && c->close_timeout_ms <= 600000, "close_timeout_ms");
  CHECK(c->closed_linger_ms <= 600000, "closed_linger_ms");
  CHECK(c->closed_linger_max <= (1u << 20), "closed_linger_max");
  CHECK(c->shard_segments_max >= 64, "shard_segments_max");
  CHECK(c->udp_rcvbuf >= 4096 && c->udp_rcvbuf <= (1u << 30), "udp_rcvbuf");
  CHECK(c->udp_sndbuf >= 4096 && c->udp_sndbuf <= (1u << 30), "udp_sndbuf");
  CHECK(c->overload_refuse_ms <= 600000, "overload_refuse_ms");
  CHECK(c->wake_coalesce_us <= 10000, "wake_coalesce_us");
  CHECK(c->inbox_max >= 16, "inbox_max");
  CHECK(c->trim_interval_ms == 0 ||
            (c->trim_interval_ms >= 10 && c->trim_interval_ms <= 3600000),
        "trim_interval_ms");
  CHECK(c->tcp_send_max >= c->max_frame + KITE__FRAME_HDR && c->tcp_send_max <= (1u << 30),
        "tcp_send_max (must hold a max_frame)");
  /* Version 2 sends a frame as records (18 bytes more per 16 KiB), in a
   * WebSocket message at worst (a 14-byte header at most). */
  CHECK(!c->tcp_addr ||
            !((c->versions & KITE_VERSION_2) ||
              (!c->versions && c->token_key_set)) ||
            c->tcp_send_max >= kite__tv2_seal_cap(c->max_frame) + 14,
        "tcp_send_max (must hold a max_frame sealed as v2 records)");
  CHECK(c->tcp_stall_ms >= 100, "tcp_stall_ms");
  CHECK(c->tcp_linger_ms <= 600000, "tcp_linger_ms");
  CHECK(c->http_head_max >= 256 && c->http_head_max <= (1u << 20), "http_head_max");
  CHECK(c->ws_max_message >= 64, "ws_max_message");
  CHECK(c->tcp_preopen_max >= 1 && c->tcp_preopen_max <= (1u << 24), "tcp_preopen_max");
  CHECK((c->versions & ~(KITE_VERSION_1 | KITE_VERSION_2)) == 0, "versions");
  CHECK(!(c->versions & KITE_VERSION_2) || c->token_key_set,
        "versions (version 2 needs token_key_set)");
  bool v2 = (c->versions & KITE_VERSION_2) || (!c->versions && c->token_key_set);
  CHECK(!v2 || c->mtu >= 576, "mtu (version 2 needs 576 at least)");
  CHECK(c->token_record_max >= 1 && c->token_record_max <= (1u << 24),
        "token_record_max");
  CHECK(c->unreliable_bytes_per_s >= 1024 &&
            c->unreliable_bytes_per_s <= (1u << 30),
        "unreliable_bytes_per_s");
  CHECK(c->unreliable_queue_max == 0 ||
            (c->unreliable_queue_max >= 16 && c->unreliable_queue_max <= 65536),
        "unreliable_queue_max");
  const char *logic_field = kite__logic_config_bad(c); /* the layer's own */
  CHECK(!logic_field, logic_field);
  /* A frame must fit the peer's receive window whole, or it never arrives
   * (frames wait in KCP until complete), and the send queue. */
  uint64_t mss = c->mtu - KITE_KCP_OVERHEAD;
  CHECK(c->max_frame >= KITE__PING_BODY_MAX &&
            c->max_frame + KITE__FRAME_HDR <= (uint64_t)(c->rcv_wnd - 1) * mss &&
            c->max_frame + KITE__FRAME_HDR <= (uint64_t)c->send_queue_max * mss,
        "max_frame (must fit rcv_wnd and send_queue_max segments)");
#undef CHECK
  return 0;
}
