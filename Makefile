# Two entry points: `make lesson` runs the first lesson end to end, `make test` runs the tests.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LESSON ?= notebooks/00_why_transfer_works.ipynb
OUT ?= outputs
# Offline assets for the tests: $TLKIT_ASSETS, else ../shared/data beside the checkout.
TEST_ASSETS := $(abspath $(or $(TLKIT_ASSETS),../shared/data))

.PHONY: lesson test lab clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra: `.venv/.installed-test` is made by installing tlkit[test], and so on.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

lesson: $(VENV)/.installed-lessons
	$(PY) scripts/run_lesson.py $(LESSON) --out $(OUT)

test: $(VENV)/.installed-test
	TLKIT_PROFILE=offline TLKIT_ASSETS=$(TEST_ASSETS) KERAS_HOME=$(CURDIR)/.keras_home \
		$(PY) -m pytest --nbval-lax tests notebooks

lab: $(VENV)/.installed-lab
	$(VENV)/bin/jupyter lab notebooks/

# The graded assignments: student notebooks and autograders in build/assignments (assignments/README.md).
.PHONY: assignments
assignments: $(VENV)/.installed-assignments
	$(PY) assignments/build.py --out build/assignments

clean:
	rm -rf $(VENV) $(OUT) .keras_home .pytest_cache
