# Two commands on a fresh machine with Python 3 and make: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PYPY ?= pypy3
PYPY_VENV ?= .venv-pypy
PIP_FLAGS = --quiet --disable-pip-version-check
INSTALL = -e '.[test]' --config-settings editable_mode=compat

.PHONY: run run-pypy proxy tac test test-cpython test-pypy test-slow test-redis-suite bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip setuptools
	$(VENV)/bin/pip install $(PIP_FLAGS) $(INSTALL)
	touch $@

$(PYPY_VENV)/.installed: pyproject.toml
	$(PYPY) -m venv $(PYPY_VENV)
	$(PYPY_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip setuptools
	$(PYPY_VENV)/bin/pip install $(PIP_FLAGS) $(INSTALL)
	touch $@

## Start the key-value server on 127.0.0.1:7379, data in ./kvdata.
run: $(VENV)/.installed
	$(VENV)/bin/twistd --pidfile= -n kvstore

## The same server under PyPy (needs pypy3 and pypy3-venv): the faster one for writes.
run-pypy: $(PYPY_VENV)/.installed
	$(PYPY_VENV)/bin/twistd --pidfile= -n kvstore

## Start the caching proxy on 127.0.0.1:7380 in front of 127.0.0.1:7379.
proxy: $(VENV)/.installed
	$(VENV)/bin/twistd --pidfile= -n kvproxy

## Start both in one process from kv.tac.
tac: $(VENV)/.installed
	$(VENV)/bin/twistd --pidfile= -ny kv.tac

## Run the whole test suite under CPython, then under PyPy when pypy3 is installed.
test: test-cpython test-pypy

# Two workers: most integration time is spent waiting on child processes.
PYTEST = -m pytest -q -n 2

test-cpython: $(VENV)/.installed
	$(VENV)/bin/python $(PYTEST)

# PYPY_GC_NURSERY: the nursery a PyPy twistd would restart itself with (serve/daemon.py),
# set up front so each of the many servers the tests start runs in one process.
test-pypy:
	@if command -v $(PYPY) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(PYPY_VENV)/.installed && \
		PYPY_GC_NURSERY=16MB $(PYPY_VENV)/bin/python $(PYTEST); \
	else echo "$(PYPY) not found: PyPy run skipped (apt-get install pypy3 pypy3-venv)"; fi

## The slow stage (CI runs it after `make test`): the soak test, under CPython, then with
## kvstore and kvproxy under PyPy (the load generator stays on CPython: KVTWIST_SERVER_PYTHON).
## tests/soak: 200 clients for 60 s, 16 MB values, kill -9 of kvstore; KVTWIST_SOAK_* tune it.
## Then a --quick run of the sharding benchmark (kvproxy and nutcracker, about a minute).
test-slow: $(VENV)/.installed
	KVTWIST_SOAK=1 $(VENV)/bin/python -m pytest -q -rP tests/soak
	KVTWIST_SLOW=1 $(VENV)/bin/python -m pytest -q tests/benchmarks/test_sharding.py
	@if command -v $(PYPY) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(PYPY_VENV)/.installed && \
		KVTWIST_SOAK=1 KVTWIST_SERVER_PYTHON=$(PYPY_VENV)/bin/python \
			$(VENV)/bin/python -m pytest -q -rP tests/soak; \
	else echo "$(PYPY) not found: PyPy soak skipped (apt-get install pypy3 pypy3-venv)"; fi

## Redis 7.0.15's own test suite against kvstore (CPython), per file, with and without
## --singledb, judged by tests/redis_suite/expected.txt: fails on a regression. Needs tclsh
## and redis-server; downloads the suite once when /work/shared/redis-tests is absent.
## KVTWIST_REDIS_SUITE_ARGS adds runner options; `python -m tests.redis_suite --help` runs it
## by hand (--update, --report, --files, --modes).
test-redis-suite: $(VENV)/.installed
	KVTWIST_REDIS_SUITE=1 $(VENV)/bin/python -m pytest -q -rP tests/redis_suite/test_redis_suite.py

## The same suite's string, keyspace, expire, multi, pubsub, tracking and list files through
## kvproxy in front of redis-server, judged by tests/redis_suite/expected-proxy-redis.txt.
.PHONY: test-proxy-suite
test-proxy-suite: $(VENV)/.installed
	KVTWIST_PROXY_SUITE=1 $(VENV)/bin/python -m pytest -q -rP tests/redis_suite/test_redis_suite.py

## Benchmarks against redis-server (needs redis-tools; see benchmarks/README.md).
bench: $(VENV)/.installed
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[bench]' --config-settings editable_mode=compat
	$(VENV)/bin/python -m benchmarks

clean:
	rm -rf $(VENV) $(PYPY_VENV) build *.egg-info twisted/plugins/dropin.cache
