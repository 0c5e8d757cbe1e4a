# lab5: `make run` (main job) and `make test` (whole suite) set up what is missing first.
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: setup run test lab tensorboard notebooks bench bench-backbone clean-runs

setup:           ## install/reuse venv, weights, evcxr kernel; build lab5 (release)
	@scripts/setup.sh

run: setup       ## the whole lab, headless: lab5 run with config.json
	@$(ENV) "$$LAB5_BIN" run

test: setup      ## fmt, clippy, all tests (incl. notebooks executed headless)
	@scripts/test.sh

lab: setup       ## JupyterLab on notebooks/ with the "Rust (lab5)" kernel
	@echo "lab: JupyterLab starts below; open the http://localhost:.../lab?token=... address it prints,"
	@echo "lab: then 01_data.ipynb first (01 to 06 in order, 00_theory last). Each notebook's first"
	@echo "lab: cell says whether its :dep cell only loads lab5 (seconds) or compiles it (minutes)."
	@$(ENV) jupyter lab --notebook-dir notebooks

tensorboard: setup ## TensorBoard (venv) on runs/: prints its address (lab5 tensorboard)
	@$(ENV) "$$LAB5_BIN" tensorboard

notebooks: setup ## execute every notebook with the full config, HTML into reports/
	@scripts/notebooks.sh

bench: setup     ## lab5 vs PyTorch: CNN training throughput, then the backbone pass (two tables)
	@scripts/bench.sh
	@scripts/bench_backbone.sh

bench-backbone: setup ## lab5 vs PyTorch: the backbone pass over every photo (prints a table)
	@scripts/bench_backbone.sh
