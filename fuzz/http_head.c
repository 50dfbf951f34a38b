/*
 * The metrics endpoint's request classifier on any bytes: it must never
 * read past the NUL, and a "GET /metrics" answer must really be one.
 */
#include "ops/metrics_http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 9000)
    return 0;
  char *head = malloc(size + 1); /* exact size: ASan sees any overrun */
  memcpy(head, data, size);
  head[size] = 0;
  kite__http_kind k = kite__http_classify(head);
  if (k == KITE__HTTP_METRICS && strncmp(head, "GET /metrics", 12) != 0)
    abort();
  if (k != KITE__HTTP_BAD_REQUEST && !strstr(head, " HTTP/1."))
    abort();
  free(head);
  return 0;
}
