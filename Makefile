# The README's two commands: `make demo` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test samples bench figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch from the registry is a several-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/styleforge transfer samples/content.jpg \
	    --style samples/style_swirl.jpg:0.6 --style samples/style_shapes.jpg:0.4 \
	    --size 256 --iterations 100 --optimizer adam --weights auto -o out/demo.png

test: $(STAMP)
	$(PY) -m pytest -q

samples: $(STAMP)
	$(PY) samples/make_samples.py

bench: $(STAMP)
	$(PY) benchmarks/transfer_speed.py
	$(PY) benchmarks/transfer_speed.py --optimizer adam --sizes 256 512 1024
	$(PY) benchmarks/coarse_to_fine.py
	$(PY) benchmarks/precision.py
	$(PY) benchmarks/train_attrs_speed.py

figures: $(STAMP)
	$(PY) docs/make_figures.py
	$(PY) docs/make_experiments.py

clean:
	rm -rf $(VENV) out .pytest_cache
