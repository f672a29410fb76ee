# PQLR: two commands for a newcomer.
#   make demo   installs everything and runs the article's pqlr-compress command
#   make test   installs everything and runs the test suite
PY := .venv/bin/python
.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/pqlr-compress --model tinybert --dataset kws_chinese --sparse 0.7 --wbits 4 \
	    --rank 16 --teacher tinybert-6l --output micro_kws.bin

test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile tests

# heavy; never part of `make test`. Results: bench/results/, figures: docs/benchmarks.md
bench: setup
	OMP_NUM_THREADS=1 $(PY) bench/train_fsdd.py --data ../shared/data/fsdd/recordings --epochs 30 --threads 1 \
	    --json bench/results/train_fsdd.json
	$(PY) bench/kernels_rv32.py --samples 2 --json bench/results/kernels_rv32.json
	$(PY) bench/wakeword_stream.py --json bench/results/wakeword_stream.json
	OMP_NUM_THREADS=2 $(PY) bench/examples.py --threads 2 --json bench/results/examples.json
	OMP_NUM_THREADS=2 $(PY) bench/budget.py --threads 2 --json bench/results/budget.json
	.venv/bin/pqlr-compress --model tinybert --dataset kws_chinese --sparse 0.7 --wbits 4 --rank 16 \
	    --teacher tinybert-6l --output runs/article/micro_kws.bin --json bench/results/article_command_report.json
	for k in reference opt; do .venv/bin/pqlr verify runs/article/micro_kws.bin --target rv32imac --dataset kws_chinese \
	    --limit 10 --kernels $$k --json bench/results/article_command_verify_rv32$$( [ $$k = opt ] && echo _opt ).json; done
	OMP_NUM_THREADS=2 $(PY) bench/distill_ablation.py --json bench/results/distill_ablation.json
	$(PY) bench/doc_tables.py

clean:
	rm -rf build runs micro_kws micro_kws.bin .pytest_cache

# PQLR next to TFLite Micro, onnxruntime, brevitas, torch-pruning and bakenn (heavy: ~2 h on 2 cores, bakenn's
# PTQ ~15 min per split; --bakenn-splits 1: ~35 min). Own environment bench/peers/.venv; never part of
# `make test`. Results: bench/results/peers.json, tables: docs/benchmarks.md
bench-peers:
	bash bench/peers/setup.sh
	OMP_NUM_THREADS=1 bench/peers/.venv/bin/python bench/peers/run.py --threads 1
