/*
 * kite-token: a new private key, or a connect token minted with one
 * (include/kite/token.h). See help.h or kite-token --help.
 */
#include "kite/error.h"
#include "kite/token.h"

#include "help.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
  fprintf(stderr, "usage: kite-token --new-key | (--key-file FILE | --key-env NAME)"
                  " --protocol-id N --addr HOST:PORT... [options]; --help for all\n");
  exit(2);
}

static uint64_t number(const char *s, const char *what) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || !end || *end || *s == '-') {
    fprintf(stderr, "kite-token: %s: \"%s\" is not a number\n", what, s);
    exit(2);
  }
  return v;
}

static int read_key_file(uint8_t key[KITE_TOKEN_KEY_BYTES], const char *path) {
  char text[256] = {0};
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "kite-token: %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = 0;
  int rc = kite_token_key_parse(key, text);
  sodium_memzero(text, sizeof(text));
  return rc;
}

int main(int argc, char **argv) {
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  const char *addrs[KITE_TOKEN_ADDRS_MAX + 1];
  kite_token_params p = {.ttl_s = 60, .addrs = addrs};
  const char *key_file = NULL, *key_env = NULL;
  int hex = 0, have_id = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(kite_token_help, stdout);
      return 0;
    } else if (!strcmp(a, "--new-key")) {
      char out[2 * KITE_TOKEN_KEY_BYTES + 1];
      if (kite_token_key_new(key) < 0)
        return 1;
      sodium_bin2hex(out, sizeof(out), key, sizeof(key));
      puts(out);
      sodium_memzero(key, sizeof(key));
      return 0;
    } else if (!strcmp(a, "--hex")) {
      hex = 1;
      continue;
    }
    if (!v)
      usage();
    i++;
    if (!strcmp(a, "--key-file")) {
      key_file = v;
    } else if (!strcmp(a, "--key-env")) {
      key_env = v;
    } else if (!strcmp(a, "--protocol-id")) {
      p.protocol_id = number(v, a);
      have_id = 1;
    } else if (!strcmp(a, "--addr")) {
      if (p.naddrs == KITE_TOKEN_ADDRS_MAX + 1)
        usage();
      addrs[p.naddrs++] = v;
    } else if (!strcmp(a, "--client-id")) {
      p.client_id = number(v, a);
    } else if (!strcmp(a, "--ttl")) {
      p.ttl_s = (uint32_t)number(v, a);
    } else if (!strcmp(a, "--timeout")) {
      p.timeout_s = (uint32_t)number(v, a);
    } else if (!strcmp(a, "--user-data")) {
      p.user_data = v;
      p.user_data_len = strlen(v);
    } else {
      usage();
    }
  }
  if ((!key_file) == (!key_env) || !have_id || p.naddrs == 0)
    usage();
  int rc = key_file ? read_key_file(key, key_file)
                    : kite_token_key_parse(key, getenv(key_env));
  if (rc < 0) {
    fprintf(stderr, "kite-token: the key is not 64 hexadecimal characters\n");
    return 1;
  }
  uint8_t tok[KITE_TOKEN_BYTES];
  rc = kite_token_mint(tok, key, &p);
  sodium_memzero(key, sizeof(key));
  if (rc < 0) {
    fprintf(stderr, "kite-token: refused (%s): check --ttl (1..300), --addr "
                    "(1..8 reachable HOST:PORT), --user-data (<= 256 bytes)\n",
            kite_strerror(rc));
    return 1;
  }
  if (hex) {
    char out[2 * KITE_TOKEN_BYTES + 1];
    sodium_bin2hex(out, sizeof(out), tok, sizeof(tok));
    puts(out);
  } else if (fwrite(tok, 1, sizeof(tok), stdout) != sizeof(tok)) {
    return 1;
  }
  return 0;
}
