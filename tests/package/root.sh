#!/usr/bin/env bash
# tests/package/root.sh PKG_CACHE: the clean bookworm minbase root the install test boots, built
# once into PKG_CACHE/root-bookworm with mmdebstrap and reused while its package list is the same.
# Under a lock (PKG_CACHE/root.lock): `make test` starts it in the background early, while the
# unit suites run, and the install test calls it again (it then finds the root built, or waits).
# The root's packages: systemd to boot, the package's dependencies (installed before boot: the
# guest has no network), keepalived (recommended: the test runs it with the package's config),
# lua5.4 for the check that the 5.4 modules load.
# Prints the root's path; exit 1 (mmdebstrap's last lines on stderr) when it cannot be built.
set -u
cache=${1:?usage: root.sh PKG_CACHE}
ROOT_PACKAGES=systemd,systemd-sysv,dbus,haproxy,libzookeeper-mt2,lua5.3,lua5.4,curl,keepalived
mirror=${PKG_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}
root=$cache/root-bookworm
mkdir -p "$cache" || exit 1
exec 9>"$cache/root.lock"
flock 9 || exit 1
if [[ ! -f $root/.sf-packages || $(<"$root/.sf-packages") != "$ROOT_PACKAGES" ]]; then
	echo "root.sh: building the bookworm root in $root ($ROOT_PACKAGES) from $mirror" >&2
	rm -rf "$root"
	# three tries: a download from the mirror can fail on its own (seen once: "apt download failed")
	built=0
	for try in 1 2 3; do
		rm -rf "$root.tmp"
		if mmdebstrap --quiet --variant=minbase --include="$ROOT_PACKAGES" bookworm "$root.tmp" "$mirror" \
			>"$cache/mmdebstrap.log" 2>&1; then
			built=1
			break
		fi
		echo "root.sh: mmdebstrap failed (try $try of 3): $(grep -m 1 '^E:' "$cache/mmdebstrap.log" | cut -c1-160)" >&2
		sleep $((try * 5))
	done
	if [ "$built" != 1 ]; then
		tail -20 "$cache/mmdebstrap.log" >&2
		rm -rf "$root.tmp"
		echo "root.sh: mmdebstrap could not build the bookworm root" >&2
		exit 1
	fi
	echo "$ROOT_PACKAGES" >"$root.tmp/.sf-packages"
	mv "$root.tmp" "$root" || exit 1
fi
echo "$root"
