/*
 * libFuzzer target: the request-head parser (proto/http_req.h), its
 * verdict and answers, and the static route's path normaliser
 * (proto/http_path.h), on any bytes fed in any pieces.
 *
 * Input: step u8 (the piece size, 0: whole), then the bytes.
 *
 * Checked besides ASan/UBSan:
 * - fed whole and fed in pieces, the outcome is the same (the same
 *   refusal, or the same head length and fields);
 * - never more than head_max bytes are taken; a head's kept strings are
 *   NUL-terminated within their capacities;
 * - an UPGRADE verdict has a valid key and a 101 that fits 160 bytes;
 * - a normalised path never starts with "/", has no empty, "." or ".."
 *   segment, no backslash and no control byte.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "proto/http_path.h"
#include "proto/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(kite__http_req *r, const uint8_t *p, size_t n, size_t step,
               size_t *taken) {
  kite__http_limits lim = {.head_max = 2048, .line_max = 512,
                           .headers_max = 16};
  kite__http_req_init(r, &lim);
  *taken = 0;
  if (!step)
    step = n ? n : 1;
  int rc = KITE_EAGAIN;
  for (size_t off = 0; off < n && rc == KITE_EAGAIN; off += step) {
    size_t k = n - off < step ? n - off : step, used;
    rc = kite__http_req_feed(r, p + off, k, &used);
    if (rc != KITE_EPROTO)
      *taken += used;
    if (rc == KITE_EAGAIN && used != k)
      abort();
  }
  if (r->head_len > lim.head_max + 1)
    abort();
  return rc;
}

static void check_path(const char *target) {
  char out[256];
  if (kite__http_path_normalize(target, out, sizeof(out)) != 0)
    return;
  size_t n = strlen(out);
  if (n == 0 || n >= sizeof(out) || out[0] == '/' || out[n - 1] == '/')
    abort();
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)out[i];
    if (c < 0x20 || c == 0x7f || c == '\\')
      abort();
    bool start = i == 0 || out[i - 1] == '/';
    if (start && (c == '.' || c == '/'))
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096)
    return 0;
  size_t step = data[0];
  data++;
  size--;
  kite__http_req *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
  size_t ta, tb;
  int ra = run(a, data, size, 0, &ta), rb = run(b, data, size, step, &tb);
  if (ra != rb || (ra == KITE_EPROTO && a->why != b->why))
    abort();
  if (ra == 0) {
    if (ta != tb || ta > size || a->head_len != b->head_len ||
        strcmp(a->target, b->target) || strcmp(a->host, b->host) ||
        strcmp(a->key, b->key) || a->upgrade_websocket != b->upgrade_websocket)
      abort();
    if (strlen(a->target) > KITE__HTTP_TARGET_CAP ||
        strlen(a->host) > KITE__HTTP_VALUE_CAP ||
        strlen(a->origin) > KITE__HTTP_VALUE_CAP ||
        strlen(a->key) > KITE__HTTP_KEY_CAP)
      abort();
    int status;
    int v = kite__http_req_verdict(a, &status);
    char out[160];
    if (v == KITE__HTTP_UPGRADE &&
        (!kite__http_ws_key_valid(a->key) ||
         kite__http_resp_101(out, sizeof(out), a->key) <= 0))
      abort();
    if (v == KITE__HTTP_REFUSE &&
        kite__http_resp_error(out, sizeof(out), status) <= 0)
      abort();
    check_path(a->target);
  }
  /* The normaliser on the raw bytes too, as a string. */
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = 0;
  check_path(s);
  free(s);
  free(a);
  free(b);
  return 0;
}
