#!/usr/bin/env bash
# Downloads a MovieLens data set from GroupLens, checks the archive, unpacks
# it and prints the recsys_worker options that read it.
#
#   launch/download_movielens.sh {100k|1m|20m|25m} [DIR] [--no-verify]
#
# DIR defaults to ./data; the archive stays in DIR, the data goes to
# DIR/ml-<version>/. The archive's size and SHA-256 must match the
# constants below (from TensorFlow Datasets' url_checksums/movielens.txt,
# which records GroupLens's archives); a mismatch removes the download and
# exits 4. --no-verify skips the check (prints the SHA-256 it got), for the
# day GroupLens republishes an archive. Nothing is downloaded when
# DIR/ml-<version>/ is already unpacked.
#
# Exit codes: 2 bad arguments, 3 download failed (no network?), 4 checksum
# mismatch, 5 unpacking failed. MOVIELENS_URL_BASE replaces
# https://files.grouplens.org/datasets/movielens (a mirror; file:// works).
# MovieLens's license forbids redistribution: download it yourself.
set -euo pipefail
usage="usage: launch/download_movielens.sh {100k|1m|20m|25m} [DIR] [--no-verify]"
version="" dir="" verify=1
for arg in "$@"; do
  case "$arg" in
    --no-verify) verify=0 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) echo "download_movielens.sh: unknown option '$arg'" >&2; echo "$usage" >&2; exit 2 ;;
    *)
      if [ -z "$version" ]; then version="$arg"
      elif [ -z "$dir" ]; then dir="$arg"
      else echo "download_movielens.sh: unexpected argument '$arg'" >&2; echo "$usage" >&2; exit 2
      fi ;;
  esac
done
[ -n "$version" ] || { echo "$usage" >&2; exit 2; }
dir="${dir:-data}"

# version: archive bytes, SHA-256, file that shows it is unpacked, recsys_worker options.
case "${version#ml-}" in
  100k) size=4924029
        sha256=50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229
        marker=u.data; flags=(--format ml-100k --data "$dir/ml-100k") ;;
  1m)   size=5917549
        sha256=a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20
        marker=ratings.dat; flags=(--format ml-1m --data "$dir/ml-1m") ;;
  20m)  size=198702078
        sha256=96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3
        marker=ratings.csv; flags=(--format csv --data "$dir/ml-20m/ratings.csv") ;;
  25m)  size=261978986
        sha256=8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa
        marker=ratings.csv; flags=(--format csv --data "$dir/ml-25m/ratings.csv") ;;
  *) echo "download_movielens.sh: unknown version '$version'; expected one of: 100k, 1m, 20m, 25m" >&2; exit 2 ;;
esac
name="ml-${version#ml-}"
url="${MOVIELENS_URL_BASE:-https://files.grouplens.org/datasets/movielens}/$name.zip"
archive="$dir/$name.zip"

print_flags() {
  echo "$name is ready in $dir/$name. Train on it with:"
  echo "  ${flags[*]}"
  echo "e.g. launch/local.sh -n 6 -- --model fm ${flags[*]}"
}
if [ -f "$dir/$name/$marker" ]; then
  echo "download_movielens.sh: $dir/$name/$marker exists; nothing to download"
  print_flags
  exit 0
fi
mkdir -p "$dir"

if [ ! -f "$archive" ]; then
  echo "download_movielens.sh: downloading $url"
  partial="$archive.partial"
  rm -f "$partial"
  # The downloader's progress and its own error go to the terminal.
  set +e
  if [[ "$url" == file://* ]]; then
    cp "${url#file://}" "$partial"
  elif command -v curl >/dev/null; then
    curl -fL --connect-timeout 20 --retry 2 --progress-bar -o "$partial" "$url"
  elif command -v wget >/dev/null; then
    wget --timeout=20 --tries=2 -O "$partial" "$url"
  else
    echo "download_movielens.sh: neither curl nor wget is installed (apt-get install curl)" >&2
    false
  fi
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    rm -f "$partial"
    rmdir "$dir" 2>/dev/null || true  # only if this run created it empty
    echo "download_movielens.sh: cannot download $url (no network, or GroupLens unreachable?); nothing was written" >&2
    exit 3
  fi
  mv "$partial" "$archive"
fi

got_size="$(stat -c %s "$archive")"
got_sha256="$(sha256sum "$archive" | cut -d' ' -f1)"
if [ "$verify" -eq 1 ]; then
  if [ "$got_size" != "$size" ] || [ "$got_sha256" != "$sha256" ]; then
    rm -f "$archive"
    {
      echo "download_movielens.sh: $archive does not match the published archive; removed it."
      echo "  expected $size bytes, SHA-256 $sha256"
      echo "  got      $got_size bytes, SHA-256 $got_sha256"
      echo "  (a broken download, a proxy's error page, or a republished archive: rerun with --no-verify only if you trust the source)"
    } >&2
    exit 4
  fi
  echo "download_movielens.sh: $archive verified (SHA-256 $got_sha256)"
else
  echo "download_movielens.sh: not verified (--no-verify): $archive has $got_size bytes, SHA-256 $got_sha256"
fi

set +e
if command -v unzip >/dev/null; then
  unzip -q -o "$archive" -d "$dir"
else
  python3 -m zipfile -e "$archive" "$dir"
fi
rc=$?
set -e
if [ "$rc" -ne 0 ] || [ ! -f "$dir/$name/$marker" ]; then
  echo "download_movielens.sh: unpacking $archive did not give $dir/$name/$marker" >&2
  exit 5
fi
print_flags
