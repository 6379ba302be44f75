# Sourced by benchmarks that need an HTTP origin (uses the caller's `die`).

# Serve DIR over HTTP on loopback in the background (pid into server_pid,
# port into server_port): Python's http.server, but the body goes out with
# sendfile(2), so the origin costs little CPU and does not starve whichever
# client needs the second core.
start_origin() { # DIR LOG
    python3 -u scripts/lib/serve-sendfile.py "$1" > "$2" 2>&1 &
    server_pid=$!
    server_port=""
    for _ in $(seq 100); do
        server_port=$(sed -n 's/^port \([0-9][0-9]*\)$/\1/p' "$2")
        [ -n "$server_port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || die "origin exited: $(cat "$2")"
        sleep 0.1
    done
    die "origin did not report its port"
}
