# hemiface: `make demo` and `make test` work on a fresh machine (Python 3.11 with venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := demo_output

.PHONY: setup browser postgresql demo test bench validate-pose study-plane study-compare study-compare-coverage clean

setup: $(STAMP) browser postgresql

# Headless Chromium for the browser tests of `hemiface app` (Debian's packages); without it they are skipped.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	echo "note: chromium and chromedriver are not installed; the browser tests of hemiface app will be skipped"

# Debian's PostgreSQL server programs: the study database tests also run on a throwaway PostgreSQL cluster
# (started and stopped by the tests themselves, on a unix socket); without them those cases are skipped.
postgresql:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	{ command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	echo "note: PostgreSQL is not installed; the PostgreSQL cases of the study database tests will be skipped"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==24.3.1
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/hemiface --version
	touch $(STAMP)

demo: setup
	$(BIN)/hemiface datasets phantom $(DEMO)/phantom_5000mm3.ply --volume-mm3 5000 --side left --overwrite
	$(BIN)/hemiface scan analyze $(DEMO)/phantom_5000mm3.ply --affected auto --out $(DEMO)/phantom_5000mm3 --overwrite
	$(BIN)/hemiface plan adm $(DEMO)/phantom_5000mm3 --sheet-thickness-mm 1 --sheet-size-mm 80x100 --out $(DEMO)/phantom_5000mm3_adm_plan --overwrite
	$(BIN)/hemiface plan fat $(DEMO)/phantom_5000mm3 --retention 0.5 --overcorrection 0.2 --out $(DEMO)/phantom_5000mm3_fat_plan --overwrite
	$(BIN)/hemiface scan analyze "$$($(BIN)/python -c 'from hemiface.datasets import sample_path; print(sample_path("demoface"))')" \
		--affected auto --out $(DEMO)/demoface_natural_asymmetry --overwrite
	$(BIN)/hemiface datasets phantom $(DEMO)/phantom_followup_2000mm3.ply --volume-mm3 2000 --side left --overwrite
	$(BIN)/hemiface scan compare $(DEMO)/phantom_5000mm3.ply $(DEMO)/phantom_followup_2000mm3.ply --affected left \
		--plan $(DEMO)/phantom_5000mm3/defect.stl --out $(DEMO)/followup_vs_baseline --overwrite
	$(BIN)/hemiface photo analyze "$$($(BIN)/python -c 'from hemiface.datasets import sample_photo_path; print(sample_photo_path("astronaut"))')" \
		--affected auto --out $(DEMO)/photo_astronaut --overwrite
	rm -rf $(DEMO)/example_study
	$(BIN)/hemiface study init $(DEMO)/example_study --from 2020-01-01 --to 2023-12-31
	$(BIN)/hemiface study import $(DEMO)/example_study examples/study_minimal/*.csv
	$(BIN)/hemiface study status $(DEMO)/example_study --out $(DEMO)/example_study/eligibility.csv
	$(BIN)/hemiface demo $(DEMO)/cohort --patients 60 --scans 20 --jobs 2 --overwrite
	@echo
	@echo "Demo results are in $(DEMO)/:"
	@echo "  $(DEMO)/phantom_5000mm3/            a symmetric face with a carved 5,000 mm3 defect (truth: $(DEMO)/phantom_5000mm3.ply.truth.json)"
	@echo "  $(DEMO)/phantom_5000mm3_adm_plan/   its stepped ADM plan: 1 mm layers, 1:1 cutting templates (adm_templates.pdf), composite STL"
	@echo "  $(DEMO)/phantom_5000mm3_fat_plan/   its fat-graft plan per aesthetic zone (50% retention, 20% overcorrection)"
	@echo "  $(DEMO)/demoface_natural_asymmetry/  a real person's face: natural asymmetry, no defect carved"
	@echo "  $(DEMO)/followup_vs_baseline/        the same face after 3,000 mm3 was restored: gain map, before/after, plan vs result"
	@echo "  $(DEMO)/photo_astronaut/             a frontal photograph: symmetry ratio, landmarks.json (editable), overlay.png"
	@echo "  $(DEMO)/example_study/               a six-patient example study: database, eligibility.csv (visit rules, reasons)"
	@echo "  $(DEMO)/cohort/study/report/         the 60-patient synthetic cohort's study report (report.html, report.pdf)"
	@echo "  $(DEMO)/cohort/study/                its database, endpoints.csv, analysis/ (statistics, analysis.xlsx), results/"
	@echo "The analyses hold measurements.json, depth_map.png, depth_map.ply and (when a defect is found) defect.stl;"
	@echo "the comparison holds comparison.json, gain_map.png, gain_map.ply and before_after.png."

# Two workers (pytest-xdist), each test file on one worker so its module fixtures and summary tables stay
# whole; the validation figures each test logs are printed for passing tests too (the PASSES section), and
# the 25 slowest steps at the end (the suite must stay under 15 minutes on 2 cores).
PYTEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -o log_cli=false -rfEsxXP --durations=25

# The study benchmark runs the 600-patient cohort (about 40 minutes on 2 cores); `make bench BENCH_STUDY_ARGS=`
# runs its 60-patient version (about 5-8 minutes).
BENCH_STUDY_ARGS ?= --full
bench: setup
	$(BIN)/python benchmarks/bench_scan_analyze.py
	$(BIN)/python benchmarks/bench_scan_holes.py
	$(BIN)/python benchmarks/bench_scan_compare.py
	$(BIN)/python benchmarks/bench_photo.py
	$(BIN)/python benchmarks/bench_scan_landmarks.py
	$(BIN)/python benchmarks/bench_study_run.py
	$(BIN)/python benchmarks/bench_dask_worker.py
	$(BIN)/python benchmarks/bench_study_600.py $(BENCH_STUDY_ARGS)
	$(BIN)/python benchmarks/bench_app.py
	$(BIN)/python benchmarks/bench_app3d.py
	$(BIN)/python benchmarks/bench_rating.py
	$(BIN)/python benchmarks/bench_plan.py
	$(BIN)/python benchmarks/bench_report.py

validate-pose: setup
	$(BIN)/python benchmarks/validate_photo_pose.py

# The default symmetry plane against automatic stable areas on the phantoms (issue 12; about 40 minutes).
study-plane: setup
	$(BIN)/python benchmarks/study_default_plane.py

# scan compare on every atrophy pattern, template and real faces, 30-120% restored (issue 12; about 25 minutes).
study-compare: setup
	$(BIN)/python benchmarks/study_compare_patterns.py

study-compare-coverage: setup
	$(BIN)/python benchmarks/study_compare_coverage.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
