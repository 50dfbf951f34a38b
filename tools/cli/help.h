/* kite-cli --help: the manual page, on stdout. */
#ifndef KITE_CLI_HELP_H
#define KITE_CLI_HELP_H

static const char kite_cli_help[] =
    "NAME\n"
    "    kite-cli - a terminal client for kited, kite's demo game\n"
    "\n"
    "SYNOPSIS\n"
    "    kite-cli --name NAME [--server HOST:PORT] [--tcp] [--join ROOM]\n"
    "    kite-cli --help\n"
    "\n"
    "DESCRIPTION\n"
    "    Connects to kited, logs in as NAME, joins ROOM if given, then reads\n"
    "    commands from standard input and prints what happens, one line per\n"
    "    event. Commands:\n"
    "        /rooms  /join ROOM  /leave  /who  /move DX DY (each -1, 0 or 1)\n"
    "        /stop  /quit  /help\n"
    "    and any other line is said in the room.\n"
    "\n"
    "OPTIONS\n"
    "    --name NAME          1 to 16 printable characters, no spaces (required)\n"
    "    --server HOST:PORT   kited's address (127.0.0.1:7001)\n"
    "    --tcp                connect over TCP instead of KCP (UDP)\n"
    "    --join ROOM          join ROOM once logged in\n"
    "    -h, --help           print this and exit\n"
    "\n"
    "EXIT STATUS\n"
    "    0 once it was connected and the session ended (/quit, the end of\n"
    "    input, or the server closing it), 1 if it never connected, 2 on a\n"
    "    bad option.\n"
    "\n"
    "EXAMPLES\n"
    "    kite-cli --name alice --join arena\n"
    "    kite-cli --name bob --server 192.0.2.7:7001 --tcp\n";

#endif
