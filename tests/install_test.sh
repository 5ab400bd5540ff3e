#!/usr/bin/env bash
# A user's project outside the tree, end to end:
#   1. `cmake --install` the build into a temporary prefix;
#   2. check the installed tree (binaries, headers, library, CMake package);
#   3. copy examples/hello out of the repository and build it against the
#      prefix with find_package(herd), as its CMakeLists.txt documents;
#   4. check that the program, started by hand, exits 2 naming HERD_CHANNEL_FD;
#   5. run it under the installed herd on an ephemeral port, GET / over HTTP,
#      ask the installed herdctl for the status, stop herd with SIGTERM and
#      require exit code 0.
#
# Usage: install_test.sh BUILD_DIR SOURCE_DIR   (ctest passes both)
# Every wait is bounded; anything started here is stopped by its pid on exit.
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)

# A master's environment must not leak into the programs started here.
unset HERD_CHANNEL_FD HERD_WORKER_ID HERD_WORKER_SLOT HERD_LOG_LEVEL HERD_LOG_FORMAT \
  HERD_HEARTBEAT_INTERVAL_MS 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/herd-install-test.XXXXXX")
HERD_PID=""
START_SECONDS=$SECONDS

say() { printf 'install_test: %s\n' "$*"; }

# True while process $1 exists and is not a zombie (our own child stays a
# zombie until `wait`, and kill -0 succeeds on a zombie).
alive() {
  [ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

cleanup() {
  status=$?
  if [ -n "$HERD_PID" ] && alive "$HERD_PID"; then
    say "killing herd (pid $HERD_PID) left running"
    kill -KILL "$HERD_PID" 2>/dev/null || true
    wait "$HERD_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  printf 'install_test: FAILED: %s\n' "$*" >&2
  if [ -f "$TMP/herd.log" ]; then
    printf -- '---- herd log ----\n' >&2
    cat "$TMP/herd.log" >&2
    printf -- '---- end of herd log ----\n' >&2
  fi
  exit 1
}

# Runs a command with its output in $TMP/<name>.log, shown only on failure.
run_logged() {
  name=$1
  shift
  if ! "$@" >"$TMP/$name.log" 2>&1; then
    cat "$TMP/$name.log" >&2
    fail "$name failed: $*"
  fi
}

cache_value() {
  sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt" | head -n 1
}

[ -f "$BUILD/CMakeCache.txt" ] || fail "$BUILD is not a CMake build directory"

# ---- 1. install ----------------------------------------------------------------

PREFIX="$TMP/prefix"
say "installing $BUILD into $PREFIX"
run_logged install cmake --install "$BUILD" --prefix "$PREFIX"

# ---- 2. the installed tree -----------------------------------------------------

for file in bin/herd bin/herd-worker bin/herdctl; do
  [ -x "$PREFIX/$file" ] || fail "the install has no executable $file"
done
[ -f "$PREFIX/include/herd/herd.h" ] || fail "the install has no include/herd/herd.h"
for pattern in 'lib*/libherd_worker.a' 'lib*/cmake/herd/herdConfig.cmake'; do
  # shellcheck disable=SC2086  # the glob is meant to expand
  set -- $PREFIX/$pattern
  [ -f "$1" ] || fail "the install has no $pattern"
done
say "installed tree has bin/{herd,herd-worker,herdctl}, include/herd/herd.h, libherd_worker.a, herdConfig.cmake"

# ---- 3. build examples/hello outside the repository -------------------------------

cp -R "$SRC/examples/hello" "$TMP/hello"
BUILD_TYPE=$(cache_value CMAKE_BUILD_TYPE)
[ -n "$BUILD_TYPE" ] || BUILD_TYPE=RelWithDebInfo  # the project's default
set -- -S "$TMP/hello" -B "$TMP/hello-build" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_BUILD_TYPE="$BUILD_TYPE"
COMPILER=$(cache_value CMAKE_CXX_COMPILER)
[ -z "$COMPILER" ] || set -- "$@" -DCMAKE_CXX_COMPILER="$COMPILER"
if grep -q '^HERD_SANITIZE:BOOL=ON$' "$BUILD/CMakeCache.txt"; then
  # The installed library is instrumented: so must the program linking it be.
  set -- "$@" -DCMAKE_CXX_FLAGS=-fsanitize=address,undefined \
    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined
  say "the build uses sanitizers: building hello with -fsanitize=address,undefined"
fi
say "configuring $TMP/hello ($BUILD_TYPE) against $PREFIX"
run_logged configure cmake "$@"
grep -q "herd_DIR:PATH=$PREFIX/" "$TMP/hello-build/CMakeCache.txt" ||
  fail "hello did not find herd in $PREFIX: $(grep '^herd_DIR' "$TMP/hello-build/CMakeCache.txt" || echo 'no herd_DIR')"
say "building hello"
run_logged build cmake --build "$TMP/hello-build" -j2
HELLO="$TMP/hello-build/hello"
[ -x "$HELLO" ] || fail "the build made no $HELLO"

# ---- 4. hello without a master ---------------------------------------------------

code=0
if command -v timeout >/dev/null 2>&1; then
  timeout 20 "$HELLO" >"$TMP/alone.log" 2>&1 </dev/null || code=$?
else
  "$HELLO" >"$TMP/alone.log" 2>&1 </dev/null || code=$?
fi
if [ "$code" -ne 2 ] || ! grep -q HERD_CHANNEL_FD "$TMP/alone.log"; then
  cat "$TMP/alone.log" >&2
  fail "hello started without herd exited $code (want 2, with a message naming HERD_CHANNEL_FD)"
fi
say "hello started by hand exits 2: $(head -n 1 "$TMP/alone.log")"

# ---- 5. hello under the installed herd ---------------------------------------------

CONTROL="$TMP/ctl.sock"
say "starting $PREFIX/bin/herd --exec $HELLO"
"$PREFIX/bin/herd" --port 0 --host 127.0.0.1 --workers 1 --control "$CONTROL" \
  --exec "$HELLO" >"$TMP/herd.log" 2>&1 </dev/null &
HERD_PID=$!

PORT=""
READY=""
for _ in $(seq 200); do  # up to 20 s
  [ -n "$PORT" ] ||
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/herd.log" | head -n 1)
  grep -q 'Worker [0-9]* ready' "$TMP/herd.log" && READY=yes
  [ -n "$PORT" ] && [ -n "$READY" ] && break
  alive "$HERD_PID" || fail "herd exited before it was ready"
  sleep 0.1
done
[ -n "$PORT" ] || fail "herd did not log 'listening on 127.0.0.1:PORT' within 20 s"
[ -n "$READY" ] || fail "no 'Worker <pid> ready' line within 20 s"
say "herd (pid $HERD_PID) listens on 127.0.0.1:$PORT with a ready worker"

if command -v python3 >/dev/null 2>&1; then
  python3 - "$PORT" >"$TMP/response.txt" 2>"$TMP/client.log" <<'EOF' || true
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
sys.stdout.write(data.decode("latin-1"))
EOF
else
  # bash's /dev/tcp; the read is bounded by `timeout` where there is one.
  {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
    if command -v timeout >/dev/null 2>&1; then timeout 10 cat <&3; else cat <&3; fi
    exec 3<&-
  } >"$TMP/response.txt" 2>"$TMP/client.log" || true
fi
head -n 1 "$TMP/response.txt" | grep -q '^HTTP/1\.1 200' ||
  fail "GET / did not answer 200: $(cat "$TMP/response.txt" "$TMP/client.log")"
grep -q 'Hello World!' "$TMP/response.txt" ||
  fail "GET / did not answer Hello World!: $(cat "$TMP/response.txt")"
say "GET / -> $(head -n 1 "$TMP/response.txt" | tr -d '\r') with 'Hello World!'"

if ! "$PREFIX/bin/herdctl" --socket "$CONTROL" status >"$TMP/herdctl.log" 2>&1; then
  cat "$TMP/herdctl.log" >&2
  fail "herdctl --socket $CONTROL status failed"
fi
grep -q '1/1 ready' "$TMP/herdctl.log" || {
  cat "$TMP/herdctl.log" >&2
  fail "herdctl status does not show 1/1 ready workers"
}
say "herdctl status: $(head -n 1 "$TMP/herdctl.log")"

kill -TERM "$HERD_PID"
for _ in $(seq 200); do  # up to 20 s
  alive "$HERD_PID" || break
  sleep 0.1
done
alive "$HERD_PID" && fail "herd still running 20 s after SIGTERM"
code=0
wait "$HERD_PID" || code=$?
HERD_PID=""
[ "$code" -eq 0 ] || fail "herd exited $code after SIGTERM (want 0)"
grep -q 'Worker [0-9]* died (code 0)' "$TMP/herd.log" ||
  fail "the hello worker did not exit with code 0"
[ ! -e "$CONTROL" ] || fail "herd left its control socket $CONTROL behind"
say "SIGTERM: herd and its hello worker exited 0"

say "passed in $((SECONDS - START_SECONDS)) s"
