#!/bin/sh
# Checks that two `make deps` started at once (as `make run` and `make test` are) take turns instead of failing on
# the dpkg/apt lock: with a stand-in `dpkg` and `apt-get` on PATH (nothing is installed, no root needed), the first
# make "installs" the missing package while holding APT_LOCK; the second waits for the lock, then finds the package
# installed and runs no apt-get at all. Prints "deps lock check: ok" or why not; exit status 0 only when ok.
#   sh Tests/Make/deps-lock-check.sh            (MAKEFILE=path checks another Makefile, e.g. an older one)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/installed"
# dpkg -s PACKAGE: installed when the stand-in apt-get made its marker.
cat > "$work/bin/dpkg" <<STUB
#!/bin/sh
[ "\$1" = "-s" ] && [ -e "$work/installed/\$2" ]
STUB
# apt-get: logs each call; `install` takes a while (the other make must overlap it) and marks the packages installed.
# It fails if another stand-in apt-get runs at the same time (what the real dpkg lock would refuse).
cat > "$work/bin/apt-get" <<STUB
#!/bin/sh
mkdir "$work/running" 2>/dev/null || { echo "apt-get \$* while another apt-get runs" >> "$work/calls"; exit 100; }
echo "apt-get \$*" >> "$work/calls"
case " \$* " in
  *" install "*) sleep 2; for p in "\$@"; do case "\$p" in -*|install|DPkg*) ;; *) touch "$work/installed/\$p";; esac; done ;;
esac
rmdir "$work/running"
STUB
chmod +x "$work/bin/dpkg" "$work/bin/apt-get"
run_make() {
    PATH="$work/bin:$PATH" make --no-print-directory -C "$root" -f "${MAKEFILE:-$root/Makefile}" deps SUDO= APT_PACKAGES=sigillo-check-package \
        APT_LOCK="$work/apt.lock" > "$work/make$1.out" 2>&1
}
run_make 1 & first=$!
run_make 2 & second=$!
status=0
wait $first || status=1
wait $second || status=1
installs=$(grep -c " install " "$work/calls" || true)
# The second make ran no apt-get: it found the package installed once it had the lock.
if [ $status != 0 ] || [ "$installs" != 1 ] || [ "$(wc -l < "$work/calls")" != 2 ] || grep -q "while another" "$work/calls"; then
    echo "deps lock check: FAILED"; echo "--- apt-get calls"; cat "$work/calls"
    for f in "$work"/make*.out; do echo "--- $f"; cat "$f"; done
    exit 1
fi
echo "deps lock check: ok (one install, the other make waited and found the package installed)"
