# Helpers the CLI check scripts source: count failures, and run a command expecting success or
# a clean failure (non-zero exit, not a signal) whose output matches a pattern.
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect_ok DESCRIPTION PATTERN COMMAND...: exit 0 and stdout+stderr matches PATTERN (grep -E)
expect_ok() {
  local what="$1" pattern="$2"; shift 2
  local out
  if ! out=$("$@" 2>&1); then fail "$what: exited non-zero: $out"; return; fi
  grep -Eq -- "$pattern" <<<"$out" || fail "$what: output lacks /$pattern/: $out"
}
# expect_error DESCRIPTION PATTERN COMMAND...: exit non-zero (not by a signal) and the message matches PATTERN
expect_error() {
  local what="$1" pattern="$2"; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then fail "$what: succeeded but should fail: $out"; return; fi
  [ $rc -ge 128 ] && fail "$what: died by signal $((rc - 128)): $out"
  grep -Eq -- "$pattern" <<<"$out" || fail "$what: message lacks /$pattern/: $out"
}
