#!/usr/bin/env bash
# shellcheck shell=bash
#
# drift.sh - check --deployed and --db against a host and database changed one thing at a time.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

scenario_drift() {
  result FAIL not-implemented 0 "scenario drift is not written yet"
}
