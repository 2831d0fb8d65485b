# shellcheck shell=bash
# tests/lib/faketime.sh: HAProxy under libfaketime, its wall clock offset read from a file.
#
#   faketime_prefix FILE   the command to put before haproxy (run.sh's HAPROXY_ENV_PREFIX): the wall
#                          clock = real clock + the offset in FILE (seconds, "+0", "-0.500"), read on
#                          every clock call; CLOCK_MONOTONIC is not faked
#
# libfaketimeMT, not libfaketime: the plain build re-reads the file without a lock and, from several
# threads, now and then returns the REAL time (measured: 3 of 800,000 readings from 4 threads).
#
# prlimit --sigpending=0: HAProxy's watchdog then cannot create its per-thread CPU timers (it warns and
# runs without). Its signal handler reads the thread's CPU clock, and libfaketime answers every clock
# call by reading FILE with stdio, malloc included, inside that handler: a handler that interrupts a
# malloc deadlocks the process (seen: one thread in wdt_handler waiting for malloc's arena lock that
# it holds itself, every other thread waiting for libfaketime's lock).

FAKETIME_LIB=${FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1}
[[ -r $FAKETIME_LIB ]] || FAKETIME_LIB=$(find /usr/lib* -name libfaketimeMT.so.1 2>/dev/null | head -n 1)

faketime_prefix() {
	printf 'prlimit --sigpending=0 env LD_PRELOAD=%s FAKETIME_TIMESTAMP_FILE=%s FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1' \
		"$FAKETIME_LIB" "$1"
}
