# Sourced by the benchmark scripts. `measure CMD ...` runs CMD under /usr/bin/time -v,
# its output in $tmp/last.log (exits, printing it, when CMD fails), and prints its wall
# seconds and peak resident MB.
measure() {
  /usr/bin/time -v "$@" >"$tmp/last.log" 2>&1 || { cat "$tmp/last.log" >&2; exit 1; }
  local wall peak
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tmp/last.log" |
    awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
  peak=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/last.log")
  echo "$wall $((peak / 1000))"
}
