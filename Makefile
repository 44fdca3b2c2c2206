# Entry points: `make lesson` runs the first lesson end to end, `make test` runs the tests,
# `make assets` fetches the offline assets, `make lint` checks the code style.
# Each creates .venv and installs what it needs on first use (after the quick checks, which need
# only the standard library: a machine that cannot run the command hears so before installing).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LESSON ?= notebooks/00_why_transfer_works.ipynb
OUT ?= outputs
# The offline assets (see `python -m tlkit.assets --help`): `make assets` fetches them into DEST (default
# $TLKIT_ASSETS, else ~/.cache/tlkit/assets); ONLY="weights caltech101" fetches some parts.
ASSETS := $(PYTHON) -m tlkit.assets
LINTED := tlkit tests benchmarks scripts assignments

.PHONY: lesson test lint assets lab clean rehearse

$(PY):
	@echo "Creating $(VENV) and installing tlkit's dependencies (the first time only: a few minutes) ..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra: `.venv/.installed-test` is made by installing tlkit[test], and so on.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

assets:
	$(ASSETS) fetch $(if $(DEST),--dest $(DEST)) $(if $(ONLY),--only $(ONLY))

lesson:
	@$(PYTHON) scripts/run_lesson.py $(LESSON) --check
	@$(MAKE) -s --no-print-directory $(VENV)/.installed-lessons
	$(PY) scripts/run_lesson.py $(LESSON) --out $(OUT)

# The assets for the tests: $TLKIT_ASSETS when set (never downloaded into), else ../shared/data
# beside the checkout, else the cache, else fetched into the cache; with none of these and no
# network, one paragraph says so before anything is installed.
# Two pytest-xdist workers on two cores: each keeps TensorFlow's and the BLAS libraries' work on one thread,
# so they do not fight for the cores. (The rehearsal keeps the default threads, the Colab setting.)
ONE_THREAD = TF_NUM_INTRAOP_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Lesson 08 trains on JAX and on TensorFlow in every run: `make test-jax` runs it, beside the JAX tests.
TWO_BACKENDS = notebooks/08_beyond_one_device.ipynb
test:
	@assets="$$($(ASSETS) ensure ../shared/data)" && \
	$(MAKE) -s --no-print-directory $(VENV)/.installed-test && \
	echo "$(ONE_THREAD) TLKIT_PROFILE=offline TLKIT_ASSETS=$$assets $(PY) -m pytest -n 2 --dist loadfile --nbval-lax tests notebooks --ignore=$(TWO_BACKENDS)" && \
	$(ONE_THREAD) TLKIT_PROFILE=offline TLKIT_ASSETS="$$assets" KERAS_HOME=$(CURDIR)/.keras_home \
		$(PY) -m pytest -n 2 --dist loadfile --nbval-lax tests notebooks --ignore=$(TWO_BACKENDS)

# The full profile (Colab's) on this CPU with every download stood in for locally: every lesson and every
# assignment's solution, or the notebooks named by NOTEBOOKS="06 assignments/02_small_different.ipynb".
rehearse: $(VENV)/.installed-test
	$(PY) scripts/rehearse.py $(NOTEBOOKS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/nbqa ruff notebooks

lab: $(VENV)/.installed-lab
	$(VENV)/bin/jupyter lab notebooks/

# The graded assignments: student notebooks and autograders in build/assignments (assignments/README.md).
.PHONY: assignments
assignments: $(VENV)/.installed-assignments
	$(PY) assignments/build.py --out build/assignments

clean:
	rm -rf $(VENV) $(OUT) .keras_home .pytest_cache

# More targets go below, each named in a .PHONY line of its own.

# The adviser's benchmark (benchmarks/measure_advice.py), a slice that checks its code, not its science:
# two tasks, one seed, two epochs, 10 images a class; then the scoring of what it wrote.
.PHONY: advice-slice
advice-slice: $(VENV)/.installed-test
	@assets="$$($(ASSETS) ensure ../shared/data)" && \
	TLKIT_ASSETS="$$assets" KERAS_HOME=$(CURDIR)/.keras_home $(PY) benchmarks/measure_advice.py --quick \
		--tasks caltech_crustaceans3 digits --seeds 0 --out $(OUT)/advice_slice.json && \
	$(PY) benchmarks/score_advice.py $(OUT)/advice_slice.json

# The same lessons' model code on JAX, Keras 3's other main backend (README, "Keras backends"): the tests of
# what tlkit does to a model (build, freeze and the BatchNorm rule, fine-tune, features, Grad-CAM), the
# image core in a process where TensorFlow cannot be imported, two lessons, and lesson 08 (data parallelism,
# which runs both backends), offline. XLA's matrix kernels keep to one thread per worker, as TensorFlow does
# in `make test`. Building and loading every registered backbone is the same Keras work on every backend:
# `make test` does it.
JAX_TESTS = tests/test_model.py tests/test_fine_tuning.py tests/test_gradcam.py tests/test_backbones.py \
	tests/test_features.py tests/test_without_tensorflow.py
JAX_LESSONS = notebooks/00_why_transfer_works.ipynb notebooks/07_beyond_images_word_vectors.ipynb
.PHONY: test-jax
test-jax:
	@assets="$$($(ASSETS) ensure ../shared/data)" && \
	$(MAKE) -s --no-print-directory $(VENV)/.installed-test && \
	KERAS_BACKEND=jax XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \
		$(ONE_THREAD) TLKIT_PROFILE=offline TLKIT_ASSETS="$$assets" KERAS_HOME=$(CURDIR)/.keras_home \
		$(PY) -m pytest -n 2 --dist loadfile --nbval-lax $(JAX_TESTS) $(JAX_LESSONS) $(TWO_BACKENDS) \
		-k "not every_backbone"
