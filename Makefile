# Swiftlet: `make run` starts a local all-in-one cluster; `make test` runs every test.
# Both install what they need first (npm ci, and the Debian packages the tests use).

SHELL := /bin/bash
NPM ?= npm
# Debian packages the tests drive: Swift's own ring builder (interoperability tests) and
# the aws cli (S3 client tests).
DEBIAN_TEST_PACKAGES := python3-swift awscli

.PHONY: all install build test test-unit run clean clean-data debian-deps bench

all: build

node_modules/.package-lock.json: package.json package-lock.json $(wildcard packages/*/package.json) ring-builder/package.json
	@node -e 'process.exit(typeof require("zlib").crc32 === "function" ? 0 : 1)' || \
	  { echo "Swiftlet needs Node.js 20.15 or later (zlib.crc32); this is $$(node --version)" >&2; exit 1; }
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

# The diskfile's native module (packages/diskfile/src/native.ts): Node-API, built with the C
# compiler (installed from Debian if missing) and the headers that come with Node.
DISKFILE_ADDON := packages/diskfile/dist/native/diskfile.node
NODE_INCLUDE = $(shell node -p 'require("path").resolve(process.execPath, "../../include/node")')

# The one-file bundles of the programs come after the compile (packages/common/src/programs.ts).
build: install $(DISKFILE_ADDON)
	npx tsc --build
	node packages/cluster/dist/bin/bundle-programs.js

$(DISKFILE_ADDON): packages/diskfile/native/diskfile.c
	@command -v cc >/dev/null || { echo "installing Debian package: gcc"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq gcc libc6-dev >/dev/null; }
	@test -f "$(NODE_INCLUDE)/node_api.h" || { echo "Node's headers are not in $(NODE_INCLUDE) (Debian's own nodejs has them in libnode-dev)" >&2; exit 1; }
	@mkdir -p $(@D)
	cc -O2 -Wall -Wextra -shared -fPIC -I"$(NODE_INCLUDE)" -o $@ $<

debian-deps:
	@missing=""; for p in $(DEBIAN_TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: build debian-deps
	npx vitest run $(VITEST_ARGS)

test-unit: build
	npx vitest run packages ring-builder

# SWIFTLET_S3_PORT (8080), SWIFTLET_PORT_BASE (6300), SWIFTLET_ACCESS_KEY/SECRET_KEY and
# SWIFTLET_ALT_ACCESS_KEY/ALT_SECRET_KEY are read by the launcher.
run: build
	node packages/cluster/dist/bin/cluster.js run --dir var

bench: build
	@echo "benchmarks: see bench/README.md"

clean:
	npx tsc --build --clean
	rm -rf packages/*/dist/bundle ring-builder/dist/bundle $(DISKFILE_ADDON)

clean-data:
	rm -rf var
