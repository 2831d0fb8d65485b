# The Debian package: `make deb` builds build/deb/edge-snowflake_<version>_<arch>.deb from debian/
# (debhelper, compat 13); `make test-package` installs it into a booted Debian 12 root
# (tests/package/). debian/rules calls `make install-package`, which lays the files out the way the
# package ships them (PREFIX=/usr, Debian's Lua 5.3/5.4 paths, /usr/share/edge-snowflake, /etc).

DEB_OUT      ?= $(BUILD)/deb
DEB_MULTIARCH ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
DEB_VERSION  := $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
DEB_ARCH     := $(shell dpkg-architecture -qDEB_HOST_ARCH 2>/dev/null)
DEB_FILE     := $(DEB_OUT)/edge-snowflake_$(DEB_VERSION)_$(DEB_ARCH).deb
SHARE_DIR    := $(PREFIX)/share/edge-snowflake
# every module a require reaches (haproxy.lua is HAProxy's entry point, shipped under SHARE_DIR;
# conffile.lua writes the config file at build time)
PKG_LUA_MODULES := $(addprefix lua/snowflake/,config.lua boot.lua ladder.lua http.lua metrics.lua \
                   service.lua cli.lua handoff.lua render.lua)
KEEPALIVED_SCRIPTS := $(addprefix keepalived/,render.sh health_watch.sh check_health.sh notify.sh)
# the commands' manual pages (dh_compress gzips them in the package)
PKG_MAN_PAGES := man/edge-snowflake.8 man/edge-snowflake-keepalived.8

deb: deps ## build the Debian package into build/deb (debhelper; lintian's verdict in build/deb/lintian.txt)
	@rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_OUT)/src
	@# a clean copy of what git tracks (and would add): build/ and other trees stay out of the package
	@git ls-files -z --cached --others --exclude-standard | \
		(cd $(CURDIR) && xargs -0 sh -c 'for f; do [ -f "$$f" ] && printf "%s\0" "$$f"; done' sh) | \
		tar -cf - --null -T - | tar -xf - -C $(DEB_OUT)/src
	@cd $(DEB_OUT)/src && dpkg-buildpackage -b -uc -us --no-pre-clean -j2 >../build.log 2>&1 || \
		{ tail -40 ../build.log; echo "deb: dpkg-buildpackage failed; see $(DEB_OUT)/build.log" >&2; exit 1; }
	@mv -f $(DEB_OUT)/edge-snowflake_$(DEB_VERSION)_$(DEB_ARCH).deb $(DEB_OUT)/edge-snowflake_*.buildinfo \
		$(DEB_OUT)/edge-snowflake_*.changes $(DEB_OUT)/ 2>/dev/null || true
	@rm -rf $(DEB_OUT)/src
	@lintian --tag-display-limit 0 --info $(DEB_FILE) >$(DEB_OUT)/lintian.txt 2>&1 || true
	@echo "deb: $(DEB_FILE)"
	@echo "deb: lintian: $$(grep -c '^E:' $(DEB_OUT)/lintian.txt) errors, $$(grep -c '^W:' $(DEB_OUT)/lintian.txt) warnings (build/deb/lintian.txt)"

# what debian/rules installs into debian/edge-snowflake (DESTDIR); needs `make all` first
install-package:
	@test -n "$(DEB_MULTIARCH)" || { echo "install-package: no multiarch triplet (dpkg-architecture)" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/lib/$(DEB_MULTIARCH) $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(SHARE_DIR)/haproxy/errors $(DESTDIR)$(SHARE_DIR)/lua/snowflake $(DESTDIR)$(SHARE_DIR)/keepalived \
		$(DESTDIR)/etc/edge-snowflake $(DESTDIR)/var/lib/edge-snowflake $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 $(CORE_SO) $(DESTDIR)$(PREFIX)/lib/$(DEB_MULTIARCH)/libsnowflake.so.0
	@for v in $(LUA_VERSIONS); do \
		set -e; \
		install -d $(DESTDIR)$(PREFIX)/share/lua/$$v/snowflake $(DESTDIR)$(PREFIX)/lib/$(DEB_MULTIARCH)/lua/$$v/snowflake; \
		install -m 0644 lua/snowflake.lua $(DESTDIR)$(PREFIX)/share/lua/$$v/snowflake.lua; \
		install -m 0644 $(PKG_LUA_MODULES) $(DESTDIR)$(PREFIX)/share/lua/$$v/snowflake/; \
		install -m 0644 $(BUILD)/lua$$v/snowflake/core.so $(DESTDIR)$(PREFIX)/lib/$(DEB_MULTIARCH)/lua/$$v/snowflake/core.so; \
	done
	install -m 0644 haproxy/haproxy.cfg $(DESTDIR)$(SHARE_DIR)/haproxy/haproxy.cfg
	install -m 0644 haproxy/errors/*.http $(DESTDIR)$(SHARE_DIR)/haproxy/errors/
	install -m 0644 lua/snowflake/haproxy.lua $(DESTDIR)$(SHARE_DIR)/lua/snowflake/haproxy.lua
	install -m 0644 keepalived/keepalived.conf.in $(DESTDIR)$(SHARE_DIR)/keepalived/keepalived.conf.in
	install -m 0755 $(KEEPALIVED_SCRIPTS) $(DESTDIR)$(SHARE_DIR)/keepalived/
	install -m 0755 bin/edge-snowflake bin/edge-snowflake-keepalived $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(PKG_MAN_PAGES) $(DESTDIR)$(PREFIX)/share/man/man8/
	LUA_PATH="lua/?.lua;;" lua5.3 -e 'io.write(require("snowflake.conffile").text())' \
		>$(DESTDIR)/etc/edge-snowflake/config.lua
	chmod 0644 $(DESTDIR)/etc/edge-snowflake/config.lua

PKG_TESTS := $(sort $(wildcard tests/package/*_test.sh))
PKG_CACHE := $(abspath $(BUILD))/package
# held while the package and the root are built (package-prep); the install test waits for it
PKG_PREP_LOCK := $(PKG_CACHE)/prep.lock
test-package: deb $(ZKCTL) ## install the .deb into a booted Debian 12 root (systemd-nspawn) and check the units
	@$(MAKE) --no-print-directory test-package-built

# make test starts this in the background (its own session, log in $(RESULTS)/package-prep.log)
# right after the build, so the .deb and the root (~80 s, mostly dpkg and the mirror) are made
# while the unit suites run; test-package-built then waits for it and finds them made.
package-prep:
	@mkdir -p $(PKG_CACHE)
	@flock $(PKG_PREP_LOCK) sh -c '$(MAKE) --no-print-directory deb && tests/package/root.sh $(PKG_CACHE) >/dev/null'

test-package-built: $(ZKCTL)
	@mkdir -p $(PKG_CACHE) && flock $(PKG_PREP_LOCK) true
	@DEB_FILE=$(abspath $(DEB_FILE)) ZKCTL=$(abspath $(ZKCTL)) PKG_CACHE=$(PKG_CACHE) \
		tests/tools/run-c.sh $(RESULTS)/package $(PKG_TESTS)
