#!/usr/bin/env bash
# The texts scripts/install-data.sh extracts from the Debian packages (data/corpora) must be byte
# for byte ../shared/corpora's, the files every figure in docs/ was measured on. Skipped (77) when
# either folder is absent (scripts/test.sh installs data/corpora before the tests run).
set -u
src=$1
ours="${LOWBIT_DATA:-$src/data}/corpora" theirs="$src/../shared/corpora"
if [ ! -d "$ours" ] || [ ! -d "$theirs" ]; then
  echo "SKIPPED: needs both $ours (scripts/install-data.sh) and $theirs"
  exit 77
fi
fails=0
for f in austen_emma austen_mansfieldpark austen_northangerabbey austen_persuasion \
         austen_prideprejudice austen_sensesensibility mobydick; do
  if cmp -s "$ours/$f.txt" "$theirs/$f.txt"; then echo "ok: $f.txt"; else echo "FAIL: $f.txt differs"; fails=$((fails + 1)); fi
done
[ $fails -eq 0 ]
