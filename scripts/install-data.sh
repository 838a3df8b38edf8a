#!/usr/bin/env bash
# Installs the public-domain texts lowbit's main job, docs and tests use into data/corpora/ (or
# $LOWBIT_DATA), from the Debian packages they come from, without R: the packages are downloaded
# with apt-get (not installed), unpacked with dpkg-deb, and the R data objects read by
# scripts/extract_r_texts.py. The files are byte for byte those of ../shared/corpora:
#   austen_{emma,mansfieldpark,northangerabbey,persuasion,prideprejudice,sensesensibility}.txt
#                  from r-cran-janeaustenr (Jane Austen's six novels)
#   mobydick.txt   from r-cran-tokenizers (Melville, Moby Dick)
# Safe to re-run: present files are left alone. With --optional, a failed download is a warning.
set -euo pipefail
cd "$(dirname "$0")/.."
optional=0
[ "${1:-}" = "--optional" ] && optional=1
dest="${LOWBIT_DATA:-$PWD/data}/corpora"
mkdir -p "$dest"
novels="emma mansfieldpark northangerabbey persuasion prideprejudice sensesensibility"
missing=0
for n in $novels; do [ -s "$dest/austen_$n.txt" ] || missing=1; done
[ -s "$dest/mobydick.txt" ] || missing=1
[ $missing = 0 ] && exit 0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() {  # downloads the .deb files of the packages named, updating apt's lists once if needed
  (cd "$tmp" && apt-get download "$@" 2>/dev/null) && return 0
  { apt-get update -qq && (cd "$tmp" && apt-get download "$@"); } 2>/dev/null && return 0
  return 1
}
echo "lowbit: installing the texts into $dest (from r-cran-janeaustenr and r-cran-tokenizers)"
if ! fetch r-cran-janeaustenr r-cran-tokenizers; then
  if [ $optional = 1 ]; then
    echo "lowbit: warning: could not download the text packages with apt-get; tests that need them skip" >&2
    exit 0
  fi
  echo "lowbit: could not download r-cran-janeaustenr / r-cran-tokenizers with apt-get" >&2
  exit 1
fi
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
lib="$tmp/root/usr/lib/R/site-library"
args=()
for n in $novels; do args+=("$n=$dest/austen_$n.txt"); done
python3 scripts/extract_r_texts.py "$lib/janeaustenr" "${args[@]}"
python3 scripts/extract_r_texts.py "$lib/tokenizers" "mobydick=$dest/mobydick.txt"
