/* kite-lobby --help: the manual page, on stdout. */
#ifndef KITE_LOBBY_HELP_H
#define KITE_LOBBY_HELP_H

static const char kite_lobby_help[] =
    "NAME\n"
    "    kite-lobby - the login service of a kite cluster on Redis\n"
    "\n"
    "SYNOPSIS\n"
    "    kite-lobby --redis HOST:PORT [--listen HOST:PORT] [--prefix P]\n"
    "               [--key-file FILE | --key-env NAME] [--protocol-id N]\n"
    "               [--ttl S] [--lease-ms MS] [--max-conns N]\n"
    "    kite-lobby --help\n"
    "\n"
    "DESCRIPTION\n"
    "    Answers GET (or POST) /login?name=NAME&room=ROOM over plain\n"
    "    HTTP/1.1: places the player on the node that holds ROOM, or on the\n"
    "    least-loaded registered node (which takes the room's lease), with\n"
    "    a seat reserved, all in one Redis Lua script; answers JSON with the\n"
    "    node's id and public address and a version-2 connect token for that\n"
    "    address (1600 hex digits). 503 with {\"error\": ...} when Redis does\n"
    "    not answer, no node is registered, or every node is full: retry.\n"
    "    Nodes are kited --redis ... (docs/CLUSTER.md). Plain HTTP is for a\n"
    "    loopback demo: put TLS in front of it anywhere else.\n"
    "\n"
    "OPTIONS\n"
    "    --redis HOST:PORT    the directory (required)\n"
    "    --listen HOST:PORT   IPv4 address to serve on (127.0.0.1:8080); port\n"
    "                         0 picks one (printed)\n"
    "    --prefix P           Redis key prefix, as the nodes' (kite:)\n"
    "    --key-file FILE      the tokens' private key: 64 hex characters\n"
    "    --key-env NAME       the same, from an environment variable\n"
    "                         (neither: a random key for this run)\n"
    "    --protocol-id N      the game's protocol id (0x4B495445)\n"
    "    --ttl S              token lifetime, 1..300 s (30)\n"
    "    --lease-ms MS        a new room's first lease (3000)\n"
    "    --max-conns N        HTTP connections at once (256); more are closed\n"
    "    -h, --help           print this and exit\n"
    "\n"
    "EXAMPLES\n"
    "    kite-lobby --redis 127.0.0.1:6379 --listen 127.0.0.1:8080\n"
    "    curl 'http://127.0.0.1:8080/login?name=alice&room=arena'\n";

#endif
