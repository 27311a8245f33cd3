# Two entry points for a fresh machine with python3, make and git:
#   make run    create .venv, install mailsim, simulate the classroom scenario
#   make test   install the test extras, lint, run the whole test suite
#   make lab    install the notebook extras and open the lessons in JupyterLab
#   make worksheets  print the lessons' worksheets to out/worksheets/ (PDF, one A4 page each)
#   make exact  the exactness gate of speed changes: fast paths on and off, the same tables
#   make fuzz   the fuzz tests at their large size: MAILSIM_FUZZ=large, thousands of fresh
#               examples per property (CI runs the same tests small and derandomized)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SCENARIO ?= scenarios/classroom.yaml

.PHONY: run test lint install install-test system-packages docs lab strip-notebooks clean fuzz exact worksheets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/mailsim run $(SCENARIO)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint system-packages
	MPLBACKEND=Agg $(BIN)/python -m pytest -n auto --dist loadfile

worksheets: install-test system-packages
	$(BIN)/python -m mailsim.worksheets docs/teachers out/worksheets

# System packages the tests drive — Chromium, for the lessons' widgets in a real browser;
# tshark, Wireshark's reader, the judge of the capture files; Dovecot, the real POP3 and
# IMAP server the mail programs' dialogues are checked against — from the distribution:
# installed when run as root with apt-get, named otherwise (those tests are then skipped,
# saying so; under CI they fail). Each entry: the command to look for = its packages.
SYSTEM_PACKAGES := chromium=chromium tshark=tshark dovecot=dovecot-imapd,dovecot-pop3d

system-packages:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	  tool=$${entry%%=*}; packages=$$(echo $${entry#*=} | tr , ' '); \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$packages"; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing$$missing for the tests (apt-get install$$missing)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "some tests need:$$missing — apt-get install$$missing (as root)"; \
	fi

$(VENV)/.installed-notebooks: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[notebooks]'
	touch $@

# The lessons, in JupyterLab (a browser tab opens; as root, which Jupyter refuses unless
# told, it is told).
lab: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Notebooks are committed without outputs (the tests check it).
strip-notebooks: $(VENV)/.installed-test
	$(BIN)/python -m mailsim.notebooks strip notebooks/*.ipynb notebooks/school/*.ipynb

# The classroom pictures shown in README.md, drawn anew from the simulation.
docs: install
	$(BIN)/mailsim run scenarios/classroom.yaml --plots docs/classroom > /dev/null
	rm -f docs/classroom/sequence-*page*.png
	MAILSIM_FRAMES=32 $(BIN)/mailsim plot animate scenarios/classroom.yaml -o docs/classroom/route.gif
	for frame in 96 120 209 254 309; do \
	  $(BIN)/mailsim plot animate scenarios/classroom.yaml --frame $$frame \
	    -o docs/classroom/packets-$$frame.png > /dev/null; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Scenario documents, changed shipped scenarios, --set strings and mail headers, thousands
# of each, every example within its bounds (tests/test_fuzz.py); a failure is shrunk to
# its smallest form. The statistics say how many examples each property tried.
fuzz: install-test
	MAILSIM_FUZZ=large MPLBACKEND=Agg $(BIN)/python -m pytest tests/test_fuzz.py -p no:cacheprovider --hypothesis-show-statistics

# The exactness gate of every speed change: each shipped scenario and the benchmark world
# played with the engine's fast paths on and off must give the same tables to the bit
# (benchmarks/exact.py), and so must random worlds with faults, explored further than CI.
exact: install-test
	$(BIN)/python benchmarks/exact.py
	MPLBACKEND=Agg $(BIN)/python -m pytest tests/test_properties.py tests/test_compiled.py \
	  tests/test_swift.py -k "moving_the_clock or random_worlds" -p no:cacheprovider \
	  --hypothesis-profile explore
