/*
 * The protocol version 2 flags kite-echo and kited share:
 *   --token-key FILE   the game's private key, 64 hex characters (never
 *                      printed, wiped from memory once the server has it)
 *   --protocol-id N    the game's protocol id, decimal or 0x hex
 *   --versions V       1, 2 or 1,2: the wire versions served
 * Each returns 0, or prints why to stderr and returns -1.
 */
#ifndef KITE_EXAMPLES_V2_FLAGS_H
#define KITE_EXAMPLES_V2_FLAGS_H

#include "kite/kite.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int v2flag_token_key(const char *prog, const char *file,
                                   kite_server_config *cfg) {
  char text[256];
  FILE *f = file ? fopen(file, "r") : NULL;
  if (!f) {
    fprintf(stderr, "%s: --token-key: cannot open %s: %s\n", prog,
            file ? file : "(none)", strerror(errno));
    return -1;
  }
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  int more = fgetc(f) != EOF;
  fclose(f);
  text[n] = '\0';
  int rc = more ? -1 : kite_token_key_parse(cfg->token_key, text);
  memset(text, 0, sizeof(text)); /* the key's hex goes with it */
  if (rc < 0) {
    fprintf(stderr, "%s: --token-key: %s does not hold a key (64 hex "
                    "characters)\n", prog, file);
    return -1;
  }
  cfg->token_key_set = true;
  return 0;
}

static inline int v2flag_protocol_id(const char *prog, const char *s,
                                     kite_server_config *cfg) {
  char *end;
  errno = 0;
  unsigned long long v = s ? strtoull(s, &end, 0) : 0;
  if (!s || !*s || *end || errno || *s == '-') {
    fprintf(stderr, "%s: --protocol-id needs a number (decimal or 0x hex)\n",
            prog);
    return -1;
  }
  cfg->protocol_id = (uint64_t)v;
  return 0;
}

static inline int v2flag_versions(const char *prog, const char *s,
                                  kite_server_config *cfg) {
  if (s && (!strcmp(s, "1,2") || !strcmp(s, "2,1")))
    cfg->versions = KITE_VERSION_1 | KITE_VERSION_2;
  else if (s && !strcmp(s, "1"))
    cfg->versions = KITE_VERSION_1;
  else if (s && !strcmp(s, "2"))
    cfg->versions = KITE_VERSION_2;
  else {
    fprintf(stderr, "%s: --versions takes 1, 2 or 1,2\n", prog);
    return -1;
  }
  return 0;
}

#endif
