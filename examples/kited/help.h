/* kited --help: the manual page, on stdout. */
#ifndef KITED_HELP_H
#define KITED_HELP_H

static const char kited_help[] =
    "NAME\n"
    "    kited - kite's demo game server: lobby, rooms, chat, a 20 Hz arena\n"
    "\n"
    "SYNOPSIS\n"
    "    kited [--udp HOST:PORT] [--tcp HOST:PORT | --no-tcp] [--threads N]\n"
    "          [--workers N] [--max-rooms N] [--metrics HOST:PORT] [--verbose]\n"
    "    kited --help\n"
    "\n"
    "DESCRIPTION\n"
    "    Players log in with a name, list and join rooms, chat, and move about\n"
    "    an arena whose positions each room broadcasts 20 times a second, over\n"
    "    KCP (UDP) or TCP. Handlers run on hash workers: a room's players and\n"
    "    its tick share one worker. kite-cli is the terminal client; the\n"
    "    messages are in docs/DEMO.md. Prints one line once listening; on\n"
    "    SIGINT or SIGTERM it stops gracefully and prints its counters.\n"
    "\n"
    "OPTIONS\n"
    "    --udp HOST:PORT      UDP address (127.0.0.1:7001); port 0 picks one\n"
    "    --tcp HOST:PORT      TCP address (the --udp address: one port number\n"
    "                         serves both)\n"
    "    --no-tcp             KCP only\n"
    "    --threads N          shard threads (one per CPU)\n"
    "    --workers N          worker threads (one per CPU)\n"
    "    --max-rooms N        rooms at once (64); players at once: 10000\n"
    "    --metrics HOST:PORT  Prometheus text on GET /metrics (off)\n"
    "    --verbose            log at debug level\n"
    "    -h, --help           print this and exit\n"
    "\n"
    "EXIT STATUS\n"
    "    0 after a graceful stop, 1 if the server cannot start, 2 on a bad\n"
    "    option.\n"
    "\n"
    "EXAMPLES\n"
    "    kited\n"
    "    kited --udp 0.0.0.0:7001 --metrics 127.0.0.1:9464\n"
    "    kite-cli --name alice --join arena     (from another terminal)\n";

#endif
