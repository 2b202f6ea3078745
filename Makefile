# The README's two commands: `make book` and `make test`.
# TORCH picks the torch requirement (CI passes a local CPU build: TORCH=torch==2.13.0).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch
BIN    := $(VENV)/bin
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads
# made the small tensor work of the chapters 6-50x slower.
export OMP_WAIT_POLICY ?= PASSIVE
STAMP  := $(VENV)/.installed
CHAPTERS := $(wildcard book/*.ipynb)

.PHONY: book render test test-seeds install unit strip-check notebooks notebooks-odd notebooks-even site-check strip format clean lab gpu-check

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q -e . --no-deps
	touch $(STAMP)

install: $(STAMP)

# Execute every chapter once, under nbval (`notebooks`, below), then build the website from
# those executions into _build/html (`render`): a failing cell or any Sphinx warning fails the
# build. Progress bars are off and explorers draw static figures (GAN_LAB_STATIC=1), so pages
# carry no widgets. `jupyter-book build .` alone would execute every chapter itself.
book: $(STAMP)
	OMP_NUM_THREADS=1 $(MAKE) -j2 --output-sync=target notebooks-odd notebooks-even
	$(MAKE) render

# The website from the executed copies in $(EXECUTED) (book/_ext/executed_notebooks.py): no
# chapter runs again, and a copy made from an older version of its chapter fails the build.
render: $(STAMP)
	GAN_LAB_EXECUTED=$(EXECUTED) GAN_LAB_PROGRESS=0 GAN_LAB_STATIC=1 $(BIN)/jupyter-book build . -W -n --keep-going

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/website

# Chapters are stored without outputs, except cells marked NBVAL_CHECK_OUTPUT.
strip-check: $(STAMP)
	$(BIN)/nbstripout --verify --keep-count $(CHAPTERS)

# Execute every chapter under nbval: asserts run, checked outputs are compared. Device-check
# mode (gan_lab.devices) makes a run's networks refuse direct use, as on a GPU.
# GAN_LAB_SEED (default 0) is the base seed every chapter's seeds are shifted by. Each fully
# passing chapter is kept, executed, under $(EXECUTED) (tests/nbval_save.py) for `render`.
# The chapters run as two halves (odd and even numbers), which `make -j` runs side by side.
NBVAL := GAN_LAB_PROGRESS=0 GAN_LAB_STATIC=1 GAN_LAB_DEVICE_CHECK=1 $(BIN)/python -m pytest -p no:cacheprovider \
         --nbval-lax --nbval-current-env
EXECUTED := _build/executed
NBVAL_SAVE := $(NBVAL) -p tests.nbval_save --nbval-save $(EXECUTED)
CHAPTERS_ODD := $(wildcard book/ch?[13579]_*.ipynb)
CHAPTERS_EVEN := $(filter-out $(CHAPTERS_ODD),$(CHAPTERS))
notebooks: $(STAMP)
	OMP_NUM_THREADS=1 $(MAKE) -j2 --output-sync=target notebooks-odd notebooks-even
notebooks-odd: $(STAMP)
	$(NBVAL_SAVE) $(CHAPTERS_ODD)
notebooks-even: $(STAMP)
	$(NBVAL_SAVE) $(CHAPTERS_EVEN)

# Every chapter under nbval at two more base seeds (not part of `make test`): the chapters'
# claims must hold for any random stream, not only the one they were written on.
SEEDS ?= 1 2
test-seeds: $(STAMP)
	OMP_NUM_THREADS=1 $(MAKE) -j2 --output-sync=target $(addprefix notebooks-seed-,$(SEEDS))
notebooks-seed-%: $(STAMP)
	GAN_LAB_SEED=$* $(NBVAL) book/

# The built site in a real browser (Chromium via Playwright): math typeset, images load,
# no request leaves localhost, links resolve, search works. Needs Chromium installed.
site-check: $(STAMP)
	$(BIN)/python -m pytest tests/website

# The unit tests and the two halves of the chapters under nbval are independent and each runs
# single-threaded kernels, so they share the cores; the website is then built from nbval's
# executions (each chapter runs once), and the browser check needs the built site.
test: strip-check
	OMP_NUM_THREADS=1 $(MAKE) -j3 --output-sync=target notebooks-odd notebooks-even unit
	$(MAKE) render
	$(MAKE) site-check

# Chapters in a live kernel (the explorers' widgets need one): JupyterLab from .venv, an
# optional extra that `make test` does not install.
LAB_STAMP := $(VENV)/.lab-installed
$(LAB_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q "jupyterlab>=4"
	touch $(LAB_STAMP)
lab: $(LAB_STAMP)
	$(BIN)/jupyter lab book/

# On a CUDA machine: unit tests on CUDA, every chapter in the quick profile, and the benchmark
# suite, written to results/gpu-check-<device>.json (python -m gan_lab.gpu_check --help).
gpu-check: $(STAMP)
	$(BIN)/python -m gan_lab.gpu_check

# For authors: strip outputs after editing a chapter (keeps checked cells and counts).
strip: $(STAMP)
	$(BIN)/nbstripout --keep-count $(CHAPTERS)

# For authors: wrap the chapters' code at the website's code box (book/ruff.toml: 77 characters).
format: $(STAMP)
	$(BIN)/ruff format book/

clean:
	rm -rf _build
