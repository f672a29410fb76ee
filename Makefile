# PQLR: two commands for a newcomer.
#   make demo   installs everything and runs the article's pqlr-compress command
#   make test   installs everything and runs the test suite
PY := .venv/bin/python
.PHONY: setup demo test bench bench-peers clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/pqlr-compress --model tinybert --dataset kws_chinese --sparse 0.7 --wbits 4 \
	    --rank 16 --teacher tinybert-6l --output micro_kws.bin

test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile tests

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf build runs micro_kws micro_kws.bin .pytest_cache
